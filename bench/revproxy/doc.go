// Command bench-revproxy is the baseline of the proxy-only benchmark: Go's
// httputil.ReverseProxy and nothing else, TLS with client certificates in,
// TLS out, HTTP/2 on both sides. What kip costs beyond it is the price of
// authentication, the handler chain and impersonation.
package main
