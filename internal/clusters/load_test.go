package clusters

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// kubeconfig is a usable one-context kubeconfig; change makes it hostile
// or broken.
func kubeconfig(change func(*clientcmdapi.Config)) *clientcmdapi.Config {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: "https://10.0.0.1:6443", CertificateAuthorityData: []byte("not checked here")}
	kc.AuthInfos["kip"] = &clientcmdapi.AuthInfo{Token: "kip-token"}
	kc.Contexts["ctx"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "kip"}
	kc.CurrentContext = "ctx"
	if change != nil {
		change(kc)
	}
	return kc
}

func writeKubeconfig(t *testing.T, path string, kc *clientcmdapi.Config) {
	t.Helper()
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	good := kubeconfig(nil)
	writeKubeconfig(t, filepath.Join(dir, "prod"), good)
	writeKubeconfig(t, filepath.Join(dir, "staging.kubeconfig"), good)
	writeKubeconfig(t, filepath.Join(dir, "eu-1.yaml"), kubeconfig(func(kc *clientcmdapi.Config) {
		kc.AuthInfos["kip"] = &clientcmdapi.AuthInfo{ClientCertificateData: []byte("cert"), ClientKeyData: []byte("key")}
	}))
	// A mounted Secret: names are links into ..data, which is skipped.
	data := filepath.Join(dir, "..2026_12_06")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	writeKubeconfig(t, filepath.Join(data, "mounted"), good)
	if err := os.Symlink("..2026_12_06", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "mounted"), filepath.Join(dir, "mounted")); err != nil {
		t.Fatal(err)
	}

	refusedWith := map[string]string{
		"Bad_Name":     "not a cluster name",
		"a.b.c":        "not a cluster name",
		"dup":          "named by 2 entries",
		"dup.yml":      "named by 2 entries",
		"garbage":      "not a kubeconfig",
		"exec":         "exec plugin",
		"authprovider": "auth-provider",
		"plainhttp":    "not an https URL",
		"noserver":     "no server",
		"insecure":     "insecure-skip-tls-verify",
		"nocreds":      "no token and no client certificate",
		"basicauth":    "no token and no client certificate",
		"nocontext":    "no current context",
		"nouser":       "does not define",
		"nocluster":    "does not define",
		"subdir":       "is a directory",
	}
	writeKubeconfig(t, filepath.Join(dir, "Bad_Name"), good)
	writeKubeconfig(t, filepath.Join(dir, "a.b.c"), good)
	writeKubeconfig(t, filepath.Join(dir, "dup"), good)
	writeKubeconfig(t, filepath.Join(dir, "dup.yml"), good)
	if err := os.WriteFile(filepath.Join(dir, "garbage"), []byte("{{{ not yaml"), 0o600); err != nil {
		t.Fatal(err)
	}
	hostile := map[string]func(*clientcmdapi.Config){
		"exec": func(kc *clientcmdapi.Config) {
			kc.AuthInfos["kip"] = &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{Command: "/bin/sh", Args: []string{"-c", "touch /tmp/owned"}}}
		},
		"authprovider": func(kc *clientcmdapi.Config) {
			kc.AuthInfos["kip"] = &clientcmdapi.AuthInfo{AuthProvider: &clientcmdapi.AuthProviderConfig{Name: "oidc"}}
		},
		"plainhttp": func(kc *clientcmdapi.Config) { kc.Clusters["c"].Server = "http://10.0.0.1:8080" },
		"noserver":  func(kc *clientcmdapi.Config) { kc.Clusters["c"].Server = "" },
		"insecure": func(kc *clientcmdapi.Config) {
			kc.Clusters["c"].InsecureSkipTLSVerify, kc.Clusters["c"].CertificateAuthorityData = true, nil
		},
		"nocreds": func(kc *clientcmdapi.Config) { kc.AuthInfos["kip"] = &clientcmdapi.AuthInfo{} },
		"basicauth": func(kc *clientcmdapi.Config) {
			kc.AuthInfos["kip"] = &clientcmdapi.AuthInfo{Username: "u", Password: "p"}
		},
		"nocontext": func(kc *clientcmdapi.Config) {
			kc.Contexts["other"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "kip"}
			kc.CurrentContext = ""
		},
		"nouser":    func(kc *clientcmdapi.Config) { kc.Contexts["ctx"].AuthInfo = "someone" },
		"nocluster": func(kc *clientcmdapi.Config) { kc.Contexts["ctx"].Cluster = "elsewhere" },
	}
	for name, change := range hostile {
		writeKubeconfig(t, filepath.Join(dir, name), kubeconfig(change))
	}
	if err := os.Mkdir(filepath.Join(dir, "subdir"), 0o755); err != nil {
		t.Fatal(err)
	}

	clusters, refused, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range clusters {
		names = append(names, c.Name)
		if c.Config == nil || c.Config.Host != "https://10.0.0.1:6443" {
			t.Errorf("cluster %s: config %+v", c.Name, c.Config)
		}
	}
	if got, want := strings.Join(names, ","), "eu-1,mounted,prod,staging"; got != want {
		t.Errorf("registered %s, want %s", got, want)
	}
	seen := map[string]bool{}
	for _, r := range refused {
		file := filepath.Base(r.Origin)
		want, ok := refusedWith[file]
		if !ok {
			t.Errorf("refused %s unexpectedly: %s", file, r.Reason)
			continue
		}
		seen[file] = true
		if !strings.Contains(r.Reason, want) {
			t.Errorf("%s refused with %q, want it to say %q", file, r.Reason, want)
		}
	}
	for file := range refusedWith {
		if !seen[file] {
			t.Errorf("%s was not refused", file)
		}
	}
}

func TestLoadDirCredentials(t *testing.T) {
	dir := t.TempDir()
	writeKubeconfig(t, filepath.Join(dir, "prod"), kubeconfig(nil))
	clusters, refused, err := LoadDir(dir)
	if err != nil || len(refused) != 0 || len(clusters) != 1 {
		t.Fatalf("LoadDir = %v, %v, %v", clusters, refused, err)
	}
	if c := clusters[0].Config; c.BearerToken != "kip-token" || string(c.CAData) != "not checked here" {
		t.Fatalf("prod's config carries token %q and CA %q", c.BearerToken, c.CAData)
	}
}

func TestLoadDirMissing(t *testing.T) {
	if _, _, err := LoadDir(filepath.Join(t.TempDir(), "absent")); err == nil {
		t.Fatal("LoadDir of a missing directory succeeded")
	}
}
