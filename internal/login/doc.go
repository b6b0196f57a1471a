// Package login is `kip login`, the kubectl exec credential plugin. One
// run answers one kubectl call: it takes the entry for this configuration
// from the cache under a file lock, reuses what is still good (a client
// certificate, an ID token), refreshes or signs in only when it must,
// exchanges the token for a kip client certificate in certificate mode,
// saves the result and writes the ExecCredential.
//
// Holding the lock from the cache check to the save is what makes ten
// parallel kubectl calls from a cold cache do one sign-in: the other nine
// wait and then find the fresh entry.
//
// For a cluster of a kip gateway (https://kip.example.com/clusters/<name>)
// the exchange goes to kip's root and the cache entry is kip's, so one
// sign-in serves every cluster of that kip.
//
// `kip logout` takes the same flags and removes the entries that
// configuration uses (at every kip unless one is named), each under its
// lock, then revokes their refresh tokens at the provider. The local entry
// goes first and whatever the provider answers.
package login
