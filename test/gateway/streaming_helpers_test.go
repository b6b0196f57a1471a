package gateway

import (
	"testing"

	"github.com/kip-proxy/kip/internal/rig/harness"
)

// startPortForward runs kubectl port-forward to port of pod and returns the
// local address it listens on.
func startPortForward(t *testing.T, kubeconfig string, env []string, ns, pod string, port int) string {
	t.Helper()
	local, _ := harness.StartPortForward(t, gw.bins.Kubectl, kubeconfig, env, ns, pod, port)
	return local
}
