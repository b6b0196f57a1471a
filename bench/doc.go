// Command bench measures kip against direct access to kube-apiserver and
// against other proxies, on the same real local cluster the integration
// tests use, and writes a report with plots.
//
//	go run ./bench                                # or: make bench
//	go run ./bench --smoke                        # tiny sizes, to see that it works
//	go run ./bench --report-only --out=<folder>   # redraw a report from its results.json
//
// Workloads: a small GET at concurrency 1 and 32; the same GET against a
// trivial upstream, so only proxies are compared; a large LIST; a watch
// fan-out; port-forward throughput through a test node; the credential
// exchange (TokenCredentialRequest) with OIDC ID tokens from Ory Hydra and
// with webhook tokens, through a kip of its own; gateway routing and a
// large gateway registry; session recording, with a kip that records
// (--recording-dir) beside one that does not: exec and port-forward
// throughput, kip's CPU per MiB, and memory per open exec session. For
// the small GET, two more baselines split the way from direct to kip: the
// impersonated user sent directly, and kip's own credential with kip's
// Impersonate-* headers sent directly. Every target is measured in the same run, taking turns
// round by round. kip and kubectl proxy run as processes of their own, so
// their CPU time and memory are read from /proc. Results go to
// bench/results/<date>/: report.md, results.json and PNG plots, with
// profiles and logs under raw/.
package main
