// Package recording turns the bytes of an exec or attach session that kip
// relays into a signed asciicast v2 recording, and logs port-forward
// sessions in the same format.
//
// It has three parts, each usable alone:
//
//   - stream parsers (WebSocket, for the v4/v5 channel protocols and their
//     base64 variants, and SPDY/3.1) that are handed a copy of the bytes kip
//     relays each way and report what each channel carried as Events. They
//     never block, never modify the bytes, keep a bounded amount of memory,
//     and give up on a stream they cannot parse (reporting it once) rather
//     than guess or panic: the session itself is never the recorder's to
//     break; and PortForward, which logs a port-forward session (the
//     ports from its SPDY stream headers, plain or tunnelled in WebSocket,
//     and the bytes relayed each way) without recording a byte of it;
//   - Writer, which writes Events as an asciicast v2 file whose header names
//     the session's identity, flushing at least once a second so a crash of
//     kip loses at most the last second;
//   - the seal: Writer.Close appends a trailer holding the SHA-256 of
//     everything before it, signed with kip's key, and Verify checks it, so
//     an edited, truncated, reordered or extended recording is detected;
//   - Tee, which shows a Parser the bytes relayed through an upgraded
//     connection without changing what is relayed.
//
// Security model. A recording is evidence of what a user did, so the parsers
// record a channel only in the direction it really flows (stdin and resize
// from the client, stdout, stderr and the exit status from the server): a
// client cannot write "output" into its own recording. A stream the parsers
// cannot follow is marked in the recording, never silently dropped.
package recording
