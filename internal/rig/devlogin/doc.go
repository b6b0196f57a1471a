// Package devlogin is the login and consent app that `kip dev` runs for its
// Ory Hydra, which has no sign-in pages of its own.
//
// Hydra sends the browser to /login with a login_challenge. The page asks
// for a user name and a comma-separated list of groups, with no password:
// this is a development provider, and the point is to try kip as anyone.
// Accepting it tells Hydra, through its admin API, who signed in, and
// carries the groups along in the login's context. Hydra then sends the
// browser to /consent, which grants every scope the client asked for
// without asking and puts email, name and groups into the ID token, which
// is what kip maps to a Kubernetes user.
//
// Every challenge is checked with Hydra before anything is shown or
// accepted, so a forged or stale link only ever meets an error message.
// Login CSRF needs no token of its own: a POST can only accept a challenge
// its sender already holds, and Hydra ties each challenge to the browser
// that started the flow with a cookie of its own.
//
// There is no device-verification page: Hydra v2.3.0, which kip pins, has
// no device authorization grant, so it never sends a browser to one.
package devlogin
