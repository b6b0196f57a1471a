package kubeconfig

import (
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
