// Package load sends requests the way the benchmarks measure them: one
// shared HTTP client per target (HTTP/2 where the target speaks it),
// closed-loop workers that time each request from before sending to after
// the last byte of the body, and the summaries of what they saw.
package load
