// Package soak runs kip for an hour under mixed traffic in front of the
// real rig, and reports whether it stays up, answers, and gives back the
// memory and goroutines the traffic took.
//
// kip runs as a process of its own (built from this checkout) in front of
// a local etcd and kube-apiserver, a test node for exec and port-forward,
// and Ory Hydra for OIDC sign-ins. For KIP_SOAK_DURATION (1h) it serves
// GETs, LISTs, patches, long-lived watches that are re-established as real
// clients do, exec and port-forward over WebSocket and SPDY, and credential
// exchanges whose certificates are then used, while kube-apiserver is
// restarted every KIP_SOAK_RESTART_EVERY (10m). Every 10 seconds it reads
// kip's resident memory from /proc and its goroutines from the probe port's
// /metrics. The report (samples.csv, summary.md, plot.svg) goes to
// KIP_SOAK_OUT, by default bench/results/<date>/soak.
//
// It runs only with KIP_SOAK=1, through `make soak-hour`: in `go test
// ./...` the soak test skips at once and starts nothing, and only the unit
// tests of the report's parts run.
package soak
