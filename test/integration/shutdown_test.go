package integration

import (
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/rig/harness"
)

// TestSIGTERMDrainsInFlightRequests runs `kip serve` as its own process,
// starts a large LIST through it and sends SIGTERM while the response is
// still streaming. The LIST must complete intact, new connections must be
// refused, and kip must exit 0.
func TestSIGTERMDrainsInFlightRequests(t *testing.T) {
	ns := createNamespace(t)
	user := harness.UniqueName("drained")
	grant(t, ns, userSubject(user), configMapRules...)
	createBigConfigMaps(t, ns, 16, 800<<10)
	path, wantSum, wantSize := directSnapshot(t, ns)

	kip := harness.StartKip(t, harness.KipOptions{Stack: stack})

	cfg := stack.UserConfigFor(user)
	cfg.Host = kip.URL
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var resp *http.Response
	harness.Eventually(t, time.Minute, func() error {
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
	if err := kip.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 30*time.Second, func() error {
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
	case <-kip.Exited():
		if err := kip.Err(); err != nil {
			t.Fatalf("kip exited with %v after SIGTERM", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("kip did not exit after draining")
	}
}
