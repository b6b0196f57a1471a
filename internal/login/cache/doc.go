// Package cache keeps what `kip login` obtained (ID and refresh tokens, a
// client certificate and its key) between kubectl invocations, one entry per
// login configuration, under a file lock so that parallel kubectl calls
// share one login instead of each starting their own.
//
// The cache holds credentials, so it is treated as hostile input: an entry
// that is not a regular file owned by the current user and closed to
// everyone else, that does not parse, or that was written for another
// configuration is ignored and replaced, never used. Logout lists the
// entries by the key each holds and removes them under the same lock.
package cache
