// Package options holds the flags of `kip serve`, their defaults and their
// validation, and turns them into a server.Config. It uses the standard
// k8s.io/apiserver option sets, so the flag names are the ones operators
// already know from kube-apiserver.
package options
