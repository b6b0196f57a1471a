// Package testnode is a test kubelet: a Node that kube-apiserver can send
// exec, attach, port-forward and log requests to, so that kubectl's
// streaming verbs can be proven end to end without a container runtime.
//
// A Node registers itself with InternalIP 127.0.0.1 and the port of its own
// HTTPS server, and runs every Pod whose spec.nodeName names it. Containers
// are local processes: a container's command and args run in a directory of
// the Pod's own, with their output appended to a log file; exec runs the
// requested command in that same directory, so `kubectl cp` (which runs tar)
// works; port-forward to pod port P dials 127.0.0.1:P on this machine. Images
// are ignored, and so is what a test does not need: a container whose
// process exits is not restarted and still shows as running, containers
// have no terminal of their own (exec has one on request), and logs honour
// follow and tailLines only. A Pod the API deletes is stopped, then its
// deletion confirmed, as a kubelet does.
//
// The streaming endpoints follow the kubelet's own design: a small router
// answers kube-apiserver on /exec, /attach, /portForward and /containerLogs,
// and hands exec, attach and port-forward to the CRI streaming server of
// k8s.io/cri-streaming, which a real container runtime also uses, listening
// on loopback plain HTTP. kube-apiserver speaks SPDY to the node unless the
// Node declares the ExtendWebSocketsToKubelet feature in
// status.declaredFeatures; then it passes WebSocket exec, attach and
// port-forward through unchanged, and the router converts them to SPDY with
// k8s.io/apiserver/pkg/util/proxy, as the kubelet does.
//
// Security: the node trusts whoever reaches its port. It serves a
// self-signed certificate, checks no client certificate, and runs commands
// as the user of the test process. It binds to loopback only and belongs in
// tests and benchmarks, never beside real workloads.
package testnode
