package kubeconfig

import (
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

func TestBuildIsLoadableAndRunsKipLogin(t *testing.T) {
	cfg, err := Build(Config{
		Server: "https://kip.example.com:8443", CAData: []byte("PEM"),
		Command: "/usr/local/bin/kip", Args: []string{"login", "oidc", "--issuer=https://idp", "--client-id=kip"},
		ClusterName: "c", UserName: "u", ContextName: "ctx",
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := clientcmd.Load(b)
	if err != nil {
		t.Fatalf("clientcmd cannot load the kubeconfig: %v\n%s", err, b)
	}
	if err := clientcmd.ConfirmUsable(*loaded, ""); err != nil {
		t.Fatalf("the kubeconfig is not usable: %v", err)
	}
	rc, err := clientcmd.NewDefaultClientConfig(*loaded, nil).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	if rc.Host != "https://kip.example.com:8443" || string(rc.CAData) != "PEM" {
		t.Errorf("cluster: %s %q", rc.Host, rc.CAData)
	}
	exec := rc.ExecProvider
	if exec == nil {
		t.Fatal("no exec config")
	}
	if exec.APIVersion != "client.authentication.k8s.io/v1" || exec.Command != "/usr/local/bin/kip" ||
		!exec.ProvideClusterInfo || exec.InteractiveMode != clientcmdapi.IfAvailableExecInteractiveMode ||
		len(exec.Args) != 4 || exec.Args[1] != "oidc" {
		t.Errorf("unexpected exec config %+v", exec)
	}
	if loaded.CurrentContext != "ctx" || loaded.Contexts["ctx"].AuthInfo != "u" || loaded.Contexts["ctx"].Cluster != "c" {
		t.Errorf("unexpected context %+v", loaded.Contexts)
	}
}

func TestBuildRefusesIncompleteConfig(t *testing.T) {
	for _, c := range []Config{{Command: "kip"}, {Server: "https://kip"}} {
		if _, err := Build(c); err == nil {
			t.Errorf("Build(%+v) succeeded", c)
		}
	}
}

func TestBuildGatewayClusters(t *testing.T) {
	base := Config{
		Server: "https://kip.example.com/", CAData: []byte("PEM"), Command: "kip", Args: []string{"login", "static"},
		ClusterName: "kip", UserName: "me", ContextName: "work",
	}
	tests := []struct {
		name     string
		clusters []string
		wantErr  string
	}{
		{name: "each cluster at its path, one user", clusters: []string{"dev", "prod"}},
		{name: "a name that would leave its path segment", clusters: []string{"prod", "../other"}, wantErr: "is not a cluster name"},
		{name: "a name with a slash", clusters: []string{"a/b"}, wantErr: "is not a cluster name"},
		{name: "an empty name", clusters: []string{""}, wantErr: "is not a cluster name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			c.GatewayClusters = tc.clusters
			cfg, err := Build(c)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want an error with %q, got %v", tc.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := clientcmd.Write(*cfg)
			if err != nil {
				t.Fatal(err)
			}
			loaded, err := clientcmd.Load(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(loaded.AuthInfos) != 1 || loaded.AuthInfos["me"] == nil || loaded.AuthInfos["me"].Exec == nil {
				t.Fatalf("want one exec user shared by every context, got %v", loaded.AuthInfos)
			}
			if len(loaded.Contexts) != len(tc.clusters) || loaded.CurrentContext != "work-"+tc.clusters[0] {
				t.Errorf("contexts %v, current %q", loaded.Contexts, loaded.CurrentContext)
			}
			for _, name := range tc.clusters {
				ctx := loaded.Contexts["work-"+name]
				if ctx == nil || ctx.AuthInfo != "me" || ctx.Cluster != "kip-"+name {
					t.Fatalf("context of %s: %+v", name, ctx)
				}
				if got := loaded.Clusters["kip-"+name].Server; got != "https://kip.example.com/clusters/"+name {
					t.Errorf("server of %s: %s", name, got)
				}
				if err := clientcmd.ConfirmUsable(*loaded, "work-"+name); err != nil {
					t.Errorf("context %s is not usable: %v", name, err)
				}
			}
		})
	}
}
