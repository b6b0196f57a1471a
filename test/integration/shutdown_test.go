package integration

import (
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/rig/localcluster"
)

// buildKip builds the kip binary once per test run.
func buildKip(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kip")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/kip-proxy/kip/cmd/kip")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building kip: %v\n%s", err, out)
	}
	return bin
}

// TestSIGTERMDrainsInFlightRequests runs `kip serve` as its own process,
// starts a large LIST through it and sends SIGTERM while the response is
// still streaming. The LIST must complete intact, new connections must be
// refused, and kip must exit 0.
func TestSIGTERMDrainsInFlightRequests(t *testing.T) {
	ns := createNamespace(t)
	user := uniqueName("drained")
	grant(t, ns, userSubject(user), configMapRules...)
	createBigConfigMaps(t, ns, 16, 800<<10)
	path, wantSum, wantSize := directSnapshot(t, ns)

	ports, err := localcluster.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	kip := exec.Command(buildKip(t), append([]string{"serve"}, stack.ServeArgs(stack.UpstreamKubeconfig, ports[0], ports[1])...)...)
	kip.Stdout, kip.Stderr = os.Stderr, os.Stderr
	if err := kip.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- kip.Wait() }()
	t.Cleanup(func() { _ = kip.Process.Kill() })

	cfg := stack.UserConfigFor(user)
	cfg.Host = "https://127.0.0.1:" + strconv.Itoa(ports[0])
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var resp *http.Response
	eventually(t, time.Minute, func() error {
		req, _ := http.NewRequest(http.MethodGet, cfg.Host+path, nil)
		req.Header.Set("Accept", "application/json")
		r, err := client.Do(req)
		if err != nil {
			return err
		}
		if r.StatusCode != http.StatusOK {
			_ = r.Body.Close()
			return errorf("%s", r.Status)
		}
		resp = r
		return nil
	})
	defer func() { _ = resp.Body.Close() }()

	// Read a first part, then ask kip to stop while the rest is in flight.
	h := sha256.New()
	n, err := io.CopyN(h, resp.Body, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := kip.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		fresh, err := rest.HTTPClientFor(cfg)
		if err != nil {
			return err
		}
		if r, err := fresh.Get(cfg.Host + "/api"); err == nil {
			_ = r.Body.Close()
			return errors.New("kip still accepts new connections after SIGTERM")
		}
		return nil
	})
	remaining, err := io.Copy(h, resp.Body)
	if err != nil {
		t.Fatalf("the in-flight LIST broke off after %d bytes: %v", n+remaining, err)
	}
	var gotSum [32]byte
	copy(gotSum[:], h.Sum(nil))
	if gotSum != wantSum || n+remaining != wantSize {
		t.Fatalf("the drained LIST differs: %d bytes, want %d", n+remaining, wantSize)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("kip exited with %v after SIGTERM", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("kip did not exit after draining")
	}
}
