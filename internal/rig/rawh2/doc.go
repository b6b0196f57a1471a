// Package rawh2 speaks client HTTP/2 frame by frame, for end-to-end tests
// that send what Go's client never would (malformed fields, oversized or
// trickled header blocks, requests on a connection the server is ending)
// and need to see exactly what came back on one stream: the answer, a
// reset of the stream, or a GOAWAY.
//
// It lives in the rig, next to the other real-component helpers, so that
// every test package reads answers by the same rules.
package rawh2
