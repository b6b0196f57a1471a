// Package sessions keeps the recordings of the exec and attach sessions
// kip relays: one signed asciicast file per session in a directory, named
// by day and session, with the public key that verifies them beside.
//
// Security model. The file names come from kip, never from the caller: an
// audit ID the caller chose names a file only when it is a plain name and
// no recording has it yet, so a caller can neither write outside the
// directory nor overwrite another session's recording. Files and
// directories are readable by kip's user only.
package sessions
