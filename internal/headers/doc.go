// Package headers owns the rules for the request headers that carry or
// claim an identity, so that every part of kip applies the same ones:
//
//   - which names ask for impersonation (Impersonate-*, in any letter case),
//     which the exchange and the filters refuse from callers and the proxy
//     step refuses to forward;
//   - which names a caller could use to claim an identity or an origin that
//     the upstream might believe (X-Remote-*, X-Forwarded-*, Forwarded,
//     X-Real-Ip), which the proxy step drops;
//   - the extra key in which kip alone records the caller behind a nested
//     impersonation (OriginalUserExtraKey), which no caller may set;
//   - which values may travel in an Impersonate-* header at all.
package headers
