// Package authlimit bounds what a caller without valid credentials can
// make kip spend: every bearer token kip does not recognise costs a call
// to the token webhook and a TokenReview made with kip's own credentials,
// which spends the upstream's priority-and-fairness budget that kip's own
// reviews need too.
//
// Three limits, each on its own:
//
//   - A budget of failed authentication per client address (Budget,
//     WithFailureBudget), the same token bucket as the credential
//     exchange's (internal/ratelimit). A request with a bearer token takes
//     a unit before it is authenticated and gives it back once it is
//     authenticated, so only failures spend; an address that has spent its
//     budget is answered 429 with Retry-After before anything is checked,
//     so it causes no outbound call. A token that authenticated recently
//     skips the budget: a signed-in user behind the same address (a NAT) as
//     a flood keeps working. That memory only spares the budget; the token
//     is authenticated as always.
//   - A short negative cache of tokens just refused (RefusedTokens), keyed
//     by a SHA-256 of the token, never the token, bounded in size, so that
//     a repeated bad token costs no outbound call. A verifier that could not
//     decide (unreachable, timed out) is not remembered as a refusal.
//   - A bound on outbound reviews in flight (Reviews), shared by every
//     token verifier of the process. A caller that finds it full waits a
//     bounded time, then is answered 429 with Retry-After, as
//     kube-apiserver answers when it is overloaded and as client-go
//     retries by itself. kip's own calls (SubjectAccessReviews, the
//     SelfSubjectReview that learns kip's name) are not counted here: they
//     are made only for callers already authenticated, or by kip itself.
//
// Addresses are the connection's peer (ratelimit.ClientKey), never a header
// the caller writes.
package authlimit
