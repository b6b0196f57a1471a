// Package sessions keeps the recordings of the exec and attach sessions
// kip relays: one signed asciicast file per session in a directory, named
// by day and session, with the public key that verifies them beside; and
// reads them back (DirStore, and Merge of several Stores) for listing and
// replay.
//
// Security model. The file names come from kip, never from the caller: an
// audit ID the caller chose names a file only when it is a plain name and
// no recording has it yet, so a caller can neither write outside the
// directory nor overwrite another session's recording. Files and
// directories are readable by kip's user only. Reading back, a session ID
// is accepted only as such a plain name, links are not followed, and a
// file whose header names another session answers for none.
package sessions
