// Package ratelimit keeps a budget of failures per client address, for the
// places where an unauthenticated caller can make kip check a credential:
// the credential exchange and the authentication of proxied requests. A
// unit is taken before the check and given back when it did not fail, so
// concurrent guesses cannot outrun the budget and successes cost nothing.
// The address is the connection's own peer, never a header the caller
// writes; IPv6 is keyed by /64.
package ratelimit
