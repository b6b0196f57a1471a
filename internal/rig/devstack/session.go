package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spf13/pflag"

	"github.com/kip-proxy/kip/internal/login/oidcflow"
	"github.com/kip-proxy/kip/internal/options"
	"github.com/kip-proxy/kip/internal/rig/binaries"
	"github.com/kip-proxy/kip/internal/rig/localcluster"
)

// SessionClientID is the OIDC client that `kip dev`'s users sign in with.
const SessionClientID = "kip"

// SessionOptions configures StartSession.
type SessionOptions struct {
	// RepoRoot is the kip checkout whose tools modules build the binaries.
	// Empty means the checkout around the working directory.
	RepoRoot string
	// Log receives progress lines. Nil discards them.
	Log io.Writer
	// KeepDir leaves every directory (keys, logs, the login cache) behind
	// on Stop.
	KeepDir bool
	// KubeconfigDir receives the two kubeconfigs. Empty means Dir.
	KubeconfigDir string
	// DemoUser is the user of the client-certificate kubeconfig.
	DemoUser string
	// KipCommand is the kip executable kubectl runs as its exec plugin.
	KipCommand string
	// SkipBrowser makes kip login print the sign-in URL instead of opening
	// a browser, for a session over SSH.
	SkipBrowser bool
}

// Session is what `kip dev` runs: a Stack whose kip trusts a real OIDC
// provider and signs certificates for its users, and two kubeconfigs that
// reach the cluster through kip, one per way of signing in.
type Session struct {
	Stack *Stack
	IdP   *IdentityProvider
	// Dir holds the provider's files, kip's signer CA and the login cache.
	Dir string
	// LoginKubeconfig's user signs in at the provider: kubectl runs
	// `kip login oidc` as its exec plugin, as with `kip kubeconfig`.
	LoginKubeconfig string
	// CertKubeconfig's user is DemoUser, with a client certificate from the
	// cluster's own CA, which kip trusts too.
	CertKubeconfig string
	// CallbackAddress is where kip login listens for the browser coming
	// back from the provider, the one redirect URI the client allows.
	CallbackAddress string
	// IssuerCAFile verifies the provider's certificate.
	IssuerCAFile string

	keepDir bool
	log     io.Writer
}

// StartSession starts the provider, then the control plane with a kip that
// trusts it, and writes the kubeconfigs. ctx bounds the start-up only; the
// session runs until Stop. On error everything started is stopped again.
func StartSession(ctx context.Context, opts SessionOptions) (_ *Session, err error) {
	if opts.KipCommand == "" || opts.DemoUser == "" {
		return nil, errors.New("a kip dev session needs the kip executable and a demo user name")
	}
	s := &Session{keepDir: opts.KeepDir, log: opts.Log}
	if s.log == nil {
		s.log = io.Discard
	}
	// A new directory each time, so no cache from an earlier session (whose
	// provider and signer are gone) is ever read.
	if s.Dir, err = os.MkdirTemp("", "kip-dev-"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Stop())
		}
	}()
	bins, err := binaries.Ensure(ctx, binaries.Options{RepoRoot: opts.RepoRoot, Log: s.log})
	if err != nil {
		return nil, err
	}
	callback, err := localcluster.FreePorts(1)
	if err != nil {
		return nil, err
	}
	s.CallbackAddress = "127.0.0.1:" + strconv.Itoa(callback[0])
	if err := s.start(ctx, opts, bins); err != nil {
		return nil, err
	}
	return s, s.writeKubeconfigs(opts)
}

// start runs the provider first: kip reads its files at start-up.
func (s *Session) start(ctx context.Context, opts SessionOptions, bins binaries.Paths) error {
	var err error
	s.IdP, err = StartIdentityProvider(ctx, IdentityOptions{
		HydraBinary: bins.Hydra, Dir: s.Dir, Log: s.log, KeepDir: opts.KeepDir,
		ClientID:     SessionClientID,
		RedirectURIs: []string{"http://" + s.CallbackAddress + oidcflow.CallbackPath},
	})
	if err != nil {
		return err
	}
	s.Stack, err = Start(ctx, Options{RepoRoot: opts.RepoRoot, Log: s.log, KeepDir: opts.KeepDir, ServeArgs: s.IdP.ServeArgs()})
	if err != nil {
		return err
	}
	return s.Stack.CreateDemoViewRole(ctx)
}

func (s *Session) writeKubeconfigs(opts SessionOptions) error {
	dir := opts.KubeconfigDir
	if dir == "" {
		dir = s.Dir
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	s.CertKubeconfig = filepath.Join(dir, opts.DemoUser+".kubeconfig")
	if err := s.Stack.WriteUserKubeconfig(s.CertKubeconfig, opts.DemoUser); err != nil {
		return err
	}
	s.LoginKubeconfig = filepath.Join(dir, "kip-login.kubeconfig")
	args, err := s.kubeconfigArgs(opts)
	if err != nil {
		return err
	}
	return writeLoginKubeconfig(s.LoginKubeconfig, args)
}

// kubeconfigArgs are the `kip kubeconfig` flags for the session's login
// kubeconfig. Its cache lives in Dir, so it goes with the session.
func (s *Session) kubeconfigArgs(opts SessionOptions) ([]string, error) {
	kipCA, err := writeCAFile(s.Dir, "kip-serving-ca", s.Stack.KipCAPEM)
	if err != nil {
		return nil, err
	}
	if s.IssuerCAFile, err = writeCAFile(s.Dir, "issuer-ca", s.IdP.Hydra.CAPEM); err != nil {
		return nil, err
	}
	args := []string{
		"--server=" + s.Stack.KipURL,
		"--ca-file=" + kipCA,
		"--kip-command=" + opts.KipCommand,
		"--issuer=" + s.IdP.Hydra.IssuerURL,
		"--issuer-ca-file=" + s.IssuerCAFile,
		"--client-id=" + s.IdP.ClientID,
		// The provider allows exactly this callback, registered above.
		"--listen-address=" + s.CallbackAddress,
		"--cache-dir=" + filepath.Join(s.Dir, "login-cache"),
		"--cluster-name=kip-dev", "--user-name=kip-dev-login", "--context-name=kip-dev-login",
	}
	if opts.SkipBrowser {
		args = append(args, "--skip-browser")
	}
	return args, nil
}

// writeCAFile writes a CA certificate for kip login, which reads files.
func writeCAFile(dir, name string, pem []byte) (string, error) {
	path := filepath.Join(dir, name+".crt")
	return path, os.WriteFile(path, pem, 0o600)
}

// writeLoginKubeconfig goes through the same flag parsing, validation and
// building as `kip kubeconfig`, so kip dev hands out exactly what a
// platform team would.
func writeLoginKubeconfig(path string, args []string) error {
	o := options.NewKubeconfig()
	fs := pflag.NewFlagSet("kip kubeconfig", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := o.Render()
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("writing the login kubeconfig: %w", err)
	}
	return nil
}

// Stop stops kip and the control plane, then the provider, and removes Dir
// unless KeepDir was set.
func (s *Session) Stop() error {
	var err error
	if s.Stack != nil {
		err = s.Stack.Stop()
		s.Stack = nil
	}
	if s.IdP != nil {
		err = errors.Join(err, s.IdP.Stop())
		s.IdP = nil
	}
	if s.keepDir {
		_, _ = fmt.Fprintf(s.log, "keeping %s\n", s.Dir)
		return err
	}
	return errors.Join(err, os.RemoveAll(s.Dir))
}
