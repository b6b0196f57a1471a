// Package harness is what every end-to-end test folder and the benchmark
// share: it builds kip once, starts it in this process, as a child process
// or as replicas behind a balancer, and holds the small helpers they all
// need (clients, the exchange, /metrics, deploy/rbac.yaml), each written
// once. The product never imports it.
package harness
