// Package caller carries who a request really is through kip's handler chain.
//
// Two facts outlive the generic filters that would otherwise erase them:
// the user that authenticated before a nested impersonation (kubectl --as)
// replaced it, so the upstream's audit log can name the real actor; and the
// bearer token of a caller that the upstream itself verified, so kip can pass
// that token through unchanged instead of impersonating.
//
// It also knows kip's own upstream username (KipName), which no caller
// kip impersonates may take.
package caller
