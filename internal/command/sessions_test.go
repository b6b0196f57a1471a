package command

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/sets"
	genericapifilters "k8s.io/apiserver/pkg/endpoints/filters"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kip-proxy/kip/internal/recording"
	"github.com/kip-proxy/kip/internal/sessions"
	"github.com/kip-proxy/kip/internal/sessionsapi"
	sessionsv1alpha1 "github.com/kip-proxy/kip/pkg/apis/sessions/v1alpha1"
)

// kipSessions runs kip sessions args and returns its stdout, its stderr
// and its error.
func kipSessions(args ...string) (string, string, error) {
	root := NewRoot()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"sessions"}, args...))
	err := root.Execute()
	return out.String(), errOut.String(), err
}

// sessionsDir is a recording directory as kip serve writes it, with its
// public key, holding one TTY exec session in payments and one plain
// attach in web. It returns the directory and the exec's file.
func sessionsDir(t *testing.T) (string, string) {
	t.Helper()
	root := t.TempDir()
	key, err := sessions.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sessions.NewDir(root, key); err != nil { // writes keys/<fp>.pub
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Hour).UTC()
	var first string
	for i, s := range []struct {
		id     recording.Identity
		tty    bool
		events []recording.Event
	}{
		{id: recording.Identity{SessionID: "exec1", User: "alice", Namespace: "payments", Pod: "api", Subresource: "exec"}, tty: true,
			events: []recording.Event{{Time: start.Add(time.Second), Stream: recording.StreamStdout, Data: []byte("$ id\r\n")},
				{Time: start.Add(2 * time.Second), Stream: recording.StreamStderr, Data: []byte("uid=0\r\n")}}},
		{id: recording.Identity{SessionID: "attach1", User: "bob\x1b[2J", Namespace: "web", Pod: "front", Subresource: "attach"},
			events: []recording.Event{{Time: start.Add(time.Minute + time.Second), Stream: recording.StreamStdout, Data: []byte("out\n")},
				{Time: start.Add(time.Minute + 2*time.Second), Stream: recording.StreamStderr, Data: []byte("err\n")}}},
	} {
		at := start.Add(time.Duration(i) * time.Minute)
		var buf bytes.Buffer
		w, err := recording.NewWriter(&buf, recording.Header{Identity: s.id, TTY: s.tty, Start: at}, key)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range s.events {
			w.Event(e)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		day := filepath.Join(root, at.Format(time.DateOnly))
		if err := os.MkdirAll(day, 0o700); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(day, s.id.SessionID+".cast")
		if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		if first == "" {
			first = path
		}
	}
	return root, first
}

func TestSessionsCommandsOnADirectory(t *testing.T) {
	dir, execFile := sessionsDir(t)
	out, _, err := kipSessions("list", "--dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID ") || !strings.HasPrefix(lines[1], "attach1 ") || !strings.HasPrefix(lines[2], "exec1 ") ||
		!strings.Contains(lines[2], "payments/api") || !strings.Contains(lines[2], "yes") {
		t.Errorf("kip sessions list --dir:\n%s\nwant a header, attach1 then exec1, sealed", out)
	}
	if strings.Contains(out, "\x1b") || !strings.Contains(out, `bob\x1b[2J`) {
		t.Errorf("a control character in a user name reached the terminal:\n%q", out)
	}
	out, _, err = kipSessions("list", "--dir", dir, "-n", "payments", "-o", "json")
	var list sessionsv1alpha1.SessionList
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list.Items) != 1 || list.Items[0].Name != "exec1" {
		t.Errorf("kip sessions list -n payments -o json = %s, %v; want exec1 alone", out, err)
	}

	// A gateway's cluster, and a window of start times, select sessions
	// in a directory too.
	out, _, err = kipSessions("list", "--dir", dir, "--cluster", "prod-eu", "-o", "json")
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list.Items) != 0 {
		t.Errorf("kip sessions list --cluster prod-eu = %s, %v; want none: these sessions were recorded by a kip without clusters", out, err)
	}
	out, _, err = kipSessions("list", "--dir", dir, "--until", "59m30s", "-o", "json")
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list.Items) != 1 || list.Items[0].Name != "exec1" {
		t.Errorf("kip sessions list --until 59m30s = %s, %v; want exec1 alone, which started an hour ago", out, err)
	}

	// A TTY session plays as its terminal showed it: all on stdout.
	out, errOut, err := kipSessions("play", "--dir", dir, "--speed", "1000", "exec1")
	if err != nil || out != "$ id\r\nuid=0\r\n" || errOut != "" {
		t.Errorf("play exec1 = %q, %q, %v", out, errOut, err)
	}
	out, errOut, err = kipSessions("play", "--dir", dir, "--max-idle", "1ms", "attach1")
	if err != nil || out != "out\n" || errOut != "err\n" {
		t.Errorf("play attach1 = %q, %q, %v; want stdout and stderr apart", out, errOut, err)
	}
	raw, _, err := kipSessions("play", "--dir", dir, "--raw", "exec1")
	file, _ := os.ReadFile(execFile)
	if err != nil || raw != string(file) {
		t.Errorf("play --raw is not the file: %v", err)
	}
	if _, _, err := kipSessions("play", "--dir", dir, "../exec1"); err == nil {
		t.Error("play of a path as an ID succeeded")
	}

	// verify: the key beside the directory by default; one changed byte
	// fails.
	out, _, err = kipSessions("verify", execFile)
	if err != nil || !strings.Contains(out, "is whole and sealed") {
		t.Errorf("verify FILE = %q, %v", out, err)
	}
	if _, _, err := kipSessions("verify", "--dir", dir, "attach1"); err != nil {
		t.Errorf("verify --dir ID: %v", err)
	}
	edited := bytes.Replace(file, []byte("uid=0"), []byte("uid=1"), 1)
	tampered := filepath.Join(filepath.Dir(execFile), "tampered.cast")
	if err := os.WriteFile(tampered, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := kipSessions("verify", tampered); err == nil || !strings.Contains(err.Error(), "FAILED") {
		t.Errorf("verify of an edited recording = %v, want FAILED", err)
	}
	otherKey, _ := sessions.GenerateKey()
	other := t.TempDir()
	d, _ := sessions.NewDir(other, otherKey)
	if _, _, err := kipSessions("verify", "--key", d.PublicKeyFile(), execFile); err == nil {
		t.Error("verify with another key succeeded")
	}
	if _, _, err := kipSessions("verify", "exec1"); err == nil || !strings.Contains(err.Error(), "needs --key") {
		t.Errorf("verify of a remote ID without --key = %v, want a demand for --key", err)
	}
}

// TestSessionsCommandsThroughTheAPI runs list and play against the
// sessions API over HTTP, as they reach kip.
func TestSessionsCommandsThroughTheAPI(t *testing.T) {
	dir, _ := sessionsDir(t)
	resolver := &request.RequestInfoFactory{APIPrefixes: sets.NewString("api", "apis"), GrouplessAPIPrefixes: sets.NewString("api")}
	var paths []string
	api := sessionsapi.WithSessions(http.NotFoundHandler(), sessionsapi.New(sessions.NewDirStore(dir)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.RequestURI())
		genericapifilters.WithRequestInfo(api, resolver).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kip"] = &clientcmdapi.Cluster{Server: srv.URL}
	cfg.AuthInfos["me"] = &clientcmdapi.AuthInfo{}
	cfg.Contexts["kip"] = &clientcmdapi.Context{Cluster: "kip", AuthInfo: "me", Namespace: "payments"}
	cfg.CurrentContext = "kip"
	if err := clientcmd.WriteToFile(*cfg, kubeconfig); err != nil {
		t.Fatal(err)
	}

	out, _, err := kipSessions("list", "--kubeconfig", kubeconfig, "--user", "alice", "--since", "3h", "--limit", "5")
	if err != nil || !strings.Contains(out, "exec1") || strings.Contains(out, "attach1") {
		t.Errorf("list in the context's namespace = %s, %v; want exec1 alone", out, err)
	}
	if len(paths) != 1 || !strings.HasPrefix(paths[0], "/apis/sessions.kip.dev/v1alpha1/namespaces/payments/sessions?") ||
		!strings.Contains(paths[0], "user=alice") || !strings.Contains(paths[0], "limit=5") || !strings.Contains(paths[0], "since=") {
		t.Errorf("asked kip %v", paths)
	}
	if out, _, err := kipSessions("list", "--kubeconfig", kubeconfig, "-A"); err != nil || !strings.Contains(out, "attach1") {
		t.Errorf("list -A = %s, %v", out, err)
	}
	out, _, err = kipSessions("play", "--kubeconfig", kubeconfig, "--speed", "1000", "exec1")
	if err != nil || out != "$ id\r\nuid=0\r\n" {
		t.Errorf("play through the API = %q, %v", out, err)
	}
	_, _, err = kipSessions("play", "--kubeconfig", kubeconfig, "-n", "web", "exec1")
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("play of a session of another namespace = %v, want not found", err)
	}
	keyFiles, _ := filepath.Glob(filepath.Join(dir, "keys", "*.pub"))
	if out, _, err := kipSessions("verify", "--kubeconfig", kubeconfig, "--key", keyFiles[0], "exec1"); err != nil || !strings.Contains(out, "sealed") {
		t.Errorf("verify through the API with --key = %q, %v", out, err)
	}
}
