package login_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kip-proxy/kip/internal/login"
	"github.com/kip-proxy/kip/internal/login/oidcflow"
	"github.com/kip-proxy/kip/internal/rig/logintest"
)

const helperEnv = "KIP_LOGIN_TEST_HELPER"

// TestHelperProcess is kip login in a child process of
// TestConcurrentProcessesSignInOnce; it does nothing in a normal run.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("only run as a child process")
	}
	ca, err := os.ReadFile(os.Getenv("KIP_TEST_ISSUER_CA"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig(pool)}}
	browser := func(ctx context.Context, url string) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("callback answered %s", resp.Status)
		}
		return nil
	}
	p := login.NewOIDC(login.Config{
		Mode:     login.ModeCertificate,
		CacheDir: os.Getenv("KIP_TEST_CACHE_DIR"),
		ExecInfo: os.Getenv("KUBERNETES_EXEC_INFO"),
		Stderr:   os.Stderr,
	}, oidcflow.Config{
		Issuer: os.Getenv("KIP_TEST_ISSUER"), ClientID: logintest.ClientID,
		Scopes: []string{"offline_access"}, HTTPClient: client, OpenBrowser: browser,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := p.Run(ctx, os.Stdout); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentProcessesSignInOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	e := newEnv(t)
	caFile := filepath.Join(t.TempDir(), "issuer-ca.pem")
	write(t, caFile, e.provider.CAPEM())
	const n = 5
	var (
		wg   sync.WaitGroup
		outs [n]bytes.Buffer
	)
	for i := range n {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.v")
		cmd.Env = append(os.Environ(),
			helperEnv+"=1",
			"KIP_TEST_ISSUER="+e.provider.Issuer,
			"KIP_TEST_ISSUER_CA="+caFile,
			"KIP_TEST_CACHE_DIR="+e.cacheDir,
			"KUBERNETES_EXEC_INFO="+logintest.ExecInfo(t, e.kip.Server.URL, e.kip.ServingCAPEM()),
		)
		cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := cmd.Run(); err != nil {
				t.Errorf("child %d: %v\n%s", i, err, outs[i].String())
			}
		}()
	}
	wg.Wait()
	if c := e.provider.Counts(); c.Authorizations != 1 || e.kip.Issued() != 1 {
		t.Fatalf("%d processes: want one sign-in and one certificate, got %+v issued %d", n, c, e.kip.Issued())
	}
	for i := range outs {
		if !strings.Contains(outs[i].String(), `"clientCertificateData"`) {
			t.Errorf("child %d printed no certificate:\n%s", i, outs[i].String())
		}
	}
}
