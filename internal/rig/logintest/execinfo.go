package logintest

import (
	"encoding/json"
	"testing"
)

// ExecInfo is the KUBERNETES_EXEC_INFO kubectl sets for a kubeconfig with
// provideClusterInfo: true pointing at server with caPEM.
func ExecInfo(t testing.TB, server string, caPEM []byte) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"apiVersion": "client.authentication.k8s.io/v1",
		"kind":       "ExecCredential",
		"spec": map[string]any{
			"interactive": false,
			"cluster":     map[string]any{"server": server, "certificate-authority-data": caPEM},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
