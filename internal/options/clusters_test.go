package options

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestClustersValidate(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "prod")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string // part of the error; "" when valid
	}{
		{"single cluster", nil, ""},
		{"a directory", []string{"--clusters-dir=" + dir}, ""},
		{"secrets", []string{"--clusters-secret-namespace=kip-system"}, ""},
		{"both", []string{"--clusters-dir=" + dir, "--clusters-secret-namespace=kip-system", "--clusters-secret-label=example.com/cluster"}, ""},
		{"missing directory", []string{"--clusters-dir=" + filepath.Join(dir, "absent")}, "--clusters-dir: stat"},
		{"a file", []string{"--clusters-dir=" + file}, "is a file"},
		{"bad namespace", []string{"--clusters-secret-namespace=Kip_System"}, "is not a namespace"},
		{"bad label", []string{"--clusters-secret-label=not a label"}, "is not a label key"},
		{"empty label", []string{"--clusters-secret-label="}, "is not a label key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewServe()
			fs := allFlags(o)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			var msgs []string
			for _, err := range o.Clusters.Validate() {
				msgs = append(msgs, err.Error())
			}
			got := strings.Join(msgs, "; ")
			switch {
			case tt.want == "" && got != "":
				t.Fatalf("refused: %s", got)
			case tt.want != "" && !strings.Contains(got, tt.want):
				t.Fatalf("got %q, want an error saying %q", got, tt.want)
			}
		})
	}
}

// TestGatewayHomeIsOptional: a gateway outside a cluster and without
// --kubeconfig has no home, unless it must read Secrets from one.
func TestGatewayHomeIsOptional(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	o := NewServe()
	o.Clusters.Dir = t.TempDir()
	cfg, err := o.homeConfig()
	if err != nil || cfg != nil {
		t.Fatalf("homeConfig() = %v, %v; want no home and no error", cfg, err)
	}
	o.Clusters.SecretNamespace = "kip-system"
	if _, err := o.homeConfig(); err == nil || !strings.Contains(err.Error(), "has none") {
		t.Fatalf("homeConfig() with cluster Secrets and no home: %v", err)
	}
	single := NewServe()
	if _, err := single.homeConfig(); err == nil {
		t.Fatal("single-cluster kip without --kubeconfig outside a cluster found an upstream")
	}
}
