package identity

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kip-proxy/kip/internal/rig/harness"
)

// chromiumPath is Debian's chromium, which `make test` installs when it
// is missing.
const chromiumPath = "/usr/bin/chromium"

// TestBrowserSignIn: a real headless Chromium opens the sign-in page that
// `kip login oidc` asks for, a person types a username and groups into
// kip's dev login page and presses Accept, and kubectl then works as that
// user.
func TestBrowserSignIn(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s: %v; `make browser` (part of `make test`) installs Debian's chromium", chromiumPath, err)
	}
	dir := t.TempDir()
	urlFile := filepath.Join(dir, "sign-in-url")
	opener := filepath.Join(dir, "open-browser")
	// kip login hands the URL to this program as the person's browser
	// would get it; the test's Chromium then picks it up.
	script := "#!/bin/sh\nprintf '%s' \"$1\" > '" + urlFile + ".tmp' && mv '" + urlFile + ".tmp' '" + urlFile + "'\n"
	if err := os.WriteFile(opener, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	kubeconfig := userKubeconfig(t, "certificate", "--browser-command="+opener)

	username, group := harness.UniqueName("browser"), harness.UniqueName("team")
	bindGroup(t, group)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.kubectl, "--kubeconfig="+kubeconfig, "auth", "whoami", "-o", "json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	signInURL := waitForFile(t, ctx, urlFile)
	signInWithBrowser(t, ctx, dir, signInURL, username, group)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("kubectl: %v\n%s", err, stderr.String())
	}
	got := parseWhoami(t, stdout.String())
	if want := username + "@kip.dev"; got.Username != want {
		t.Errorf("kubectl ran as %q, want %q", got.Username, want)
	}
	if !strings.Contains(strings.Join(got.Groups, ","), group) {
		t.Errorf("groups %q, want %s among them", got.Groups, group)
	}
}

// signInWithBrowser drives Chromium through the provider's sign-in: the
// dev login form, then the redirect back to kip login's callback.
func signInWithBrowser(t *testing.T, ctx context.Context, dir, signInURL, username, group string) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox,
		chromedp.UserDataDir(filepath.Join(dir, "chromium")),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		// Hydra's certificate comes from a CA made for this test run.
		chromedp.Flag("ignore-certificate-errors", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	err := chromedp.Do(browserCtx,
		chromedp.Navigate(signInURL),
		chromedp.WaitVisible("#username"),
		chromedp.SendKeys("#username", username),
		chromedp.SendKeys("#groups", group),
		chromedp.Click("#accept"),
	)
	if err != nil {
		t.Fatalf("signing in with Chromium: %v", err)
	}
	// The last redirect lands on kip login's callback page on loopback.
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		loc, err := chromedp.Run(browserCtx, chromedp.Location())
		return err == nil && strings.HasPrefix(loc, "http://127.0.0.1:") && strings.Contains(loc, "/callback"), nil
	})
	if err != nil {
		loc, _ := chromedp.Run(browserCtx, chromedp.Location())
		t.Fatalf("the browser never reached kip login's callback; it is at %s", loc)
	}
}

// waitForFile returns the content of path once it exists.
func waitForFile(t *testing.T, ctx context.Context, path string) string {
	t.Helper()
	var content []byte
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		var err error
		content, err = os.ReadFile(path)
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("kip login never opened a browser: %v", err)
	}
	return string(content)
}
