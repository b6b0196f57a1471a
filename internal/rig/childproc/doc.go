// Package childproc runs the helper processes of kip's local rig (etcd,
// kube-apiserver, and the proxies a benchmark compares) in process groups
// of their own, with their output in a log file, so that they can be
// stopped as a whole and explain themselves when they fail.
package childproc
