package login_test

import (
	"testing"

	"github.com/kip-proxy/kip/internal/login"
	"github.com/kip-proxy/kip/internal/rig/logintest"
)

// TestAskedAgainGetsANewCredential: client-go asks its exec plugin again
// within one process only when the server refused the credential (or it
// expired). A process that asks again for the cached certificate or ID
// token it was given gets a new one, so a user whose certificate kip no
// longer accepts (a revocation whose time has passed, a distrusted signer
// CA) recovers at once instead of at its expiry. Another process still
// gets the cached one.
func TestAskedAgainGetsANewCredential(t *testing.T) {
	const kubectl, nextKubectl = 4242, 4343
	t.Run("certificate", func(t *testing.T) {
		e := newEnv(t)
		var stderr syncBuffer
		plugin := e.pluginFor(login.ModeCertificate, &stderr)
		first := mustRun(t, plugin(kubectl))
		refused := mustRun(t, plugin(kubectl))
		if refused.Status.ClientCertificateData == first.Status.ClientCertificateData || e.kip.Issued() != 2 {
			t.Fatalf("the process that asked again got the same certificate (%d issued)\n%s", e.kip.Issued(), stderr.String())
		}
		other := mustRun(t, plugin(nextKubectl))
		if other.Status.ClientCertificateData != refused.Status.ClientCertificateData || e.kip.Issued() != 2 {
			t.Errorf("another process did not get the cached certificate (%d issued)", e.kip.Issued())
		}
		if c := e.provider.Counts(); c.Authorizations != 1 {
			t.Errorf("%d sign-ins, want 1: the cached ID token buys the new certificate", c.Authorizations)
		}
		checkCertificate(t, refused)
	})
	t.Run("ID token", func(t *testing.T) {
		e := newEnv(t)
		var stderr syncBuffer
		plugin := e.pluginFor(login.ModeToken, &stderr)
		first := mustRun(t, plugin(kubectl))
		refused := mustRun(t, plugin(kubectl))
		if refused.Status.Token == first.Status.Token || !e.provider.Valid(refused.Status.Token) {
			t.Fatalf("the process that asked again got the same ID token\n%s", stderr.String())
		}
		if c := e.provider.Counts(); c.Authorizations != 1 || c.Refreshes != 1 {
			t.Errorf("want one sign-in and one refresh, got %+v", c)
		}
		if other := mustRun(t, plugin(nextKubectl)); other.Status.Token != refused.Status.Token {
			t.Error("another process did not get the cached ID token")
		}
	})
	t.Run("another cluster of one gateway, same process", func(t *testing.T) {
		e := newEnv(t)
		var stderr syncBuffer
		forCluster := func(name string) *login.Plugin {
			cfg := e.config(login.ModeCertificate, &stderr)
			cfg.ExecInfo = logintest.ExecInfo(t, e.kip.Server.URL+"/clusters/"+name, e.kip.ServingCAPEM())
			cfg.Caller = kubectl
			return login.NewOIDC(cfg, e.flow())
		}
		first := mustRun(t, forCluster("prod"))
		other := mustRun(t, forCluster("staging"))
		if other.Status.ClientCertificateData != first.Status.ClientCertificateData || e.kip.Issued() != 1 {
			t.Errorf("a process asking for a second cluster of the gateway did not get the shared certificate (%d issued)\n%s", e.kip.Issued(), stderr.String())
		}
	})
	t.Run("caller unknown", func(t *testing.T) {
		e := newEnv(t)
		var stderr syncBuffer
		first := mustRun(t, login.NewOIDC(e.config(login.ModeCertificate, &stderr), e.flow()))
		again := mustRun(t, login.NewOIDC(e.config(login.ModeCertificate, &stderr), e.flow()))
		if again.Status.ClientCertificateData != first.Status.ClientCertificateData || e.kip.Issued() != 1 {
			t.Error("without a known caller, a second run did not reuse the cached certificate")
		}
	})
}

// pluginFor returns the OIDC plugin in mode as the process caller runs it.
func (e *env) pluginFor(mode login.Mode, stderr *syncBuffer) func(caller int) *login.Plugin {
	return func(caller int) *login.Plugin {
		cfg := e.config(mode, stderr)
		cfg.Caller = caller
		return login.NewOIDC(cfg, e.flow())
	}
}
