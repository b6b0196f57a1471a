package clusters

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

func withToken(token string) *clientcmdapi.Config {
	return kubeconfig(func(kc *clientcmdapi.Config) { kc.AuthInfos["kip"].Token = token })
}

// describe is a snapshot as "name=token,..." and "refused:file,...".
func describe(s Snapshot) string {
	var parts []string
	for _, c := range s.Clusters {
		parts = append(parts, c.Name+"="+c.Config.BearerToken)
	}
	for _, r := range s.Refused {
		parts = append(parts, "refused:"+filepath.Base(r.Origin))
	}
	return strings.Join(parts, ",")
}

func TestDirWatcher(t *testing.T) {
	dir := t.TempDir()
	writeKubeconfig(t, filepath.Join(dir, "a"), withToken("a1"))
	snapshots := make(chan Snapshot, 16)
	w := &DirWatcher{Dir: dir, Settle: 50 * time.Millisecond, Resync: time.Hour, OnChange: func(s Snapshot) { snapshots <- s }}
	runInBackground(t, w.Run)
	expect := func(step, want string) {
		t.Helper()
		select {
		case s := <-snapshots:
			if got := describe(s); got != want {
				t.Fatalf("%s: snapshot %q, want %q", step, got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no snapshot within 10s, want %q", step, want)
		}
	}

	expect("start", "a=a1")
	writeKubeconfig(t, filepath.Join(dir, "b"), withToken("b1"))
	expect("add b", "a=a1,b=b1")
	writeKubeconfig(t, filepath.Join(dir, "a"), withToken("a2"))
	expect("rotate a", "a=a2,b=b1")
	writeKubeconfig(t, filepath.Join(dir, "c"), kubeconfig(func(kc *clientcmdapi.Config) {
		kc.AuthInfos["kip"] = &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{Command: "/bin/true"}}
	}))
	expect("malformed c", "a=a2,b=b1,refused:c")
	for _, f := range []string{"b", "c"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	expect("remove b and c", "a=a2")

	// A mounted Secret changes by swapping its ..data link to a new
	// folder in one rename, as the kubelet does.
	mountVersion(t, dir, "..v1", withToken("m1"))
	expect("mount m", "a=a2,m=m1")
	mountVersion(t, dir, "..v2", withToken("m2"))
	expect("rotate the mounted m", "a=a2,m=m2")

	// Events that change nothing hand nothing over.
	if err := os.WriteFile(filepath.Join(dir, ".ignored"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-snapshots:
		t.Fatalf("a change that changes no entry gave the snapshot %q", describe(s))
	case <-time.After(500 * time.Millisecond):
	}
}

// mountVersion writes m into dir/version and points dir/..data at it with
// an atomic rename; dir/m links through ..data.
func mountVersion(t *testing.T, dir, version string, m *clientcmdapi.Config) {
	t.Helper()
	if err := os.Mkdir(filepath.Join(dir, version), 0o755); err != nil {
		t.Fatal(err)
	}
	writeKubeconfig(t, filepath.Join(dir, version, "m"), m)
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(version, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "m")); os.IsNotExist(err) {
		if err := os.Symlink(filepath.Join("..data", "m"), filepath.Join(dir, "m")); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDirWatcherRefusesAMissingDirectory(t *testing.T) {
	w := &DirWatcher{Dir: filepath.Join(t.TempDir(), "absent"), Settle: time.Millisecond, Resync: time.Hour, OnChange: func(Snapshot) {}}
	if err := w.Run(context.Background()); err == nil {
		t.Fatal("Run on a missing directory returned nil")
	}
}

func TestMergedRefusesANameInTwoSources(t *testing.T) {
	var got Snapshot
	m := &Merged{OnChange: func(s Snapshot) { got = s }}
	m.Update("dir", Snapshot{Clusters: []Cluster{{Name: "a", Origin: "dir/a"}, {Name: "b", Origin: "dir/b"}}})
	m.Update("secrets", Snapshot{Clusters: []Cluster{{Name: "b", Origin: "secret kip/b"}, {Name: "c", Origin: "secret kip/c"}},
		Refused: []Refusal{{Name: "D", Origin: "secret kip/d", Reason: "bad name"}}})
	var names []string
	for _, c := range got.Clusters {
		names = append(names, c.Name)
	}
	if strings.Join(names, ",") != "a,c" {
		t.Fatalf("registered %v, want a,c", names)
	}
	if len(got.Refused) != 3 {
		t.Fatalf("refused %v, want both entries of b and d", got.Refused)
	}
	m.Update("secrets", Snapshot{})
	if len(got.Clusters) != 2 || len(got.Refused) != 0 {
		t.Fatalf("after the Secrets went: %+v", got)
	}
}
