// Package authn decides who a caller is. It builds kip's request
// authenticator: client certificates from a union of trusted CAs, and bearer
// tokens (also inside the WebSocket bearer subprotocol) that the upstream API
// server verifies by TokenReview. Anonymous requests are never accepted.
package authn
