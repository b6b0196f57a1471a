package identity

import (
	"crypto/x509"
	"encoding/asn1"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/hydra"
	"github.com/kip-proxy/kip/internal/rig/jwtconfig"
	"github.com/kip-proxy/kip/internal/rig/tokenwebhook"
)

// Rule 4 of docs/security.md: identity providers may not claim system:
// names. Users that an OIDC provider or a token webhook vouches for, with
// reserved names, reserved extras or values no header can carry, are
// refused, and the rest reach the upstream exactly as vouched for.

// usersWebhook is the rig's token webhook, which answers each token it
// was given with exactly the user it was given, whatever that user is: the
// identity provider an attacker controls, or one that is merely careless.
type usersWebhook struct {
	*tokenwebhook.Webhook
	kubeconfig string
}

func startUsersWebhook(t *testing.T) *usersWebhook {
	t.Helper()
	hook, err := tokenwebhook.Start(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hook.Close)
	w := &usersWebhook{Webhook: hook, kubeconfig: filepath.Join(t.TempDir(), "users-webhook.kubeconfig")}
	if err := hook.WriteKubeconfig(w.kubeconfig); err != nil {
		t.Fatal(err)
	}
	return w
}

// tokenFor returns a new token the webhook answers with u.
func (w *usersWebhook) tokenFor(u authenticationv1.UserInfo) string {
	token := harness.UniqueName("users-webhook-token")
	w.Vouch(token, u)
	return token
}

// percentClaimKey is an extra key the test's authentication configuration
// maps from the ID token's "pct" claim. kube-apiserver's validation, which
// kip applies to the file, allows '%' but no space, no non-ASCII letter and
// no upper case in such keys, so only '%' can be tried through OIDC.
const percentClaimKey = "idp.kip.dev/100%25-%"

// identityKip starts a kip of the test's own that asks w about tokens and
// trusts Hydra with one more extra mapping, percentClaimKey.
func identityKip(t *testing.T, w *usersWebhook) *replica {
	t.Helper()
	data, err := jwtconfig.File(env.idp.Hydra.IssuerURL, env.idp.Audiences, env.idp.Hydra.CAPEM,
		apiserverv1.ExtraMapping{Key: percentClaimKey, ValueExpression: "claims.pct"})
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(t.TempDir(), "authentication.yaml")
	if err := os.WriteFile(config, data, 0o600); err != nil {
		t.Fatal(err)
	}
	ns := createNamespace(t)
	applyDeployedRole(t, ns, signerSecret)
	r, err := startReplica(t, ns, 0, "--authentication-token-webhook-config-file="+w.kubeconfig, "--authentication-config="+config)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func withBearer(kip *rest.Config, token string) *rest.Config {
	c := rest.CopyConfig(kip)
	c.BearerToken = token
	return c
}

// identityCase is an identity a provider asserts, and what the upstream
// must see for it through kip; a nil want is a refusal.
type identityCase struct {
	name string
	// token makes the token that asserts the identity.
	token func(t *testing.T) string
	// user is the name the upstream must never see when refused.
	user string
	want *authenticationv1.UserInfo
	// logs is what kip's log must say about a refusal.
	logs string
}

// TestIdentityEdgeCases: identities a token webhook or an OIDC provider
// may assert that kip must refuse (reserved and empty names, empty and
// colliding extra keys, control characters that no header and no kip
// certificate may carry) or must pass on exactly, with extra keys
// lower-cased in ASCII only and every other byte intact through kip's
// percent-encoding. Each is tried as a bearer token and through the
// credential exchange, whose certificate is then used; the upstream's
// SelfSubjectReview is the judge.
func TestIdentityEdgeCases(t *testing.T) {
	w := startUsersWebhook(t)
	kip := identityKip(t, w)
	for _, tt := range append(webhookIdentityCases(w), oidcIdentityCases()...) {
		t.Run(tt.name, func(t *testing.T) {
			token := tt.token(t)
			t.Run("bearer", func(t *testing.T) { checkBearer(t, kip, token, tt) })
			t.Run("exchange", func(t *testing.T) { checkExchange(t, kip, token, tt) })
			if tt.want == nil {
				checkRefusalRecorded(t, kip, tt)
			}
		})
	}
}

func checkBearer(t *testing.T, kip *replica, token string, tt identityCase) {
	got, err := whoami(t, withBearer(kip.config, token))
	if tt.want == nil {
		if !apierrors.IsUnauthorized(err) {
			t.Fatalf("got %+v, %v; want 401 Unauthorized", got, err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	checkIdentity(t, got, *tt.want)
}

func checkExchange(t *testing.T, kip *replica, token string, tt identityCase) {
	out, err := exchangeAt(t, kip.config, token, nil)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if tt.want == nil {
		if out.Status.Credential != nil || ptrString(out.Status.Message) != "authentication failed" {
			t.Fatalf("exchange status %+v; want only the message \"authentication failed\"", out.Status)
		}
		return
	}
	cred := out.Status.Credential
	if cred == nil {
		t.Fatalf("no credential: %s", ptrString(out.Status.Message))
	}
	// The certificate itself carries the extras as the upstream reads
	// them: kip, not only the upstream, lower-cases the keys.
	if signed := certificateExtras(t, parseCert(t, cred.ClientCertificateData)); !maps.EqualFunc(signed, tt.want.Extra, slices.Equal) {
		t.Errorf("the certificate carries extras %q, want %q", signed, tt.want.Extra)
	}
	got, err := whoami(t, withCert(kip.config, cred))
	if err != nil {
		t.Fatal(err)
	}
	checkIdentity(t, got, *tt.want)
}

// certificateExtras reads kip's extras extension.
func certificateExtras(t *testing.T, cert *x509.Certificate) map[string]authenticationv1.ExtraValue {
	t.Helper()
	extras := map[string]authenticationv1.ExtraValue{}
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidKipExtras) {
			continue
		}
		var entries []struct {
			Key    string   `asn1:"utf8"`
			Values []string `asn1:"utf8"`
		}
		if _, err := asn1.Unmarshal(ext.Value, &entries); err != nil {
			t.Fatalf("kip's extras extension: %v", err)
		}
		for _, e := range entries {
			extras[e.Key] = e.Values
		}
	}
	return extras
}

// checkRefusalRecorded: a refusal reaches nothing upstream, and kip's log
// says why.
func checkRefusalRecorded(t *testing.T, kip *replica, tt identityCase) {
	t.Helper()
	if tt.user != "" && upstreamSaw(t, tt.user) {
		t.Errorf("the upstream saw a request as %s", tt.user)
	}
	if tt.logs == "" {
		return
	}
	data, err := os.ReadFile(kip.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), tt.logs) {
		t.Errorf("kip's log does not say %q", tt.logs)
	}
}

// webhookIdentityCases are identities the token webhook asserts.
func webhookIdentityCases(w *usersWebhook) []identityCase {
	// asserts makes a case for one identity: its name is unique, so the
	// audit log can tell whether the upstream ever saw it.
	asserts := func(name string, u authenticationv1.UserInfo, want *authenticationv1.UserInfo, logs string) identityCase {
		return identityCase{name: "webhook/" + name, user: u.Username, want: want, logs: logs,
			token: func(*testing.T) string { return w.tokenFor(u) }}
	}
	// member is an ordinary user with extras; seen is what the upstream
	// must see for it, with wantExtra.
	member := func(extra map[string]authenticationv1.ExtraValue) authenticationv1.UserInfo {
		return authenticationv1.UserInfo{Username: harness.UniqueName("dana"), UID: harness.UniqueName("uid"), Groups: []string{"team-a"}, Extra: extra}
	}
	seen := func(u authenticationv1.UserInfo, wantExtra map[string]authenticationv1.ExtraValue) *authenticationv1.UserInfo {
		return &authenticationv1.UserInfo{Username: u.Username, UID: u.UID, Groups: append(slices.Clone(u.Groups), "system:authenticated"), Extra: wantExtra}
	}
	type extras = map[string]authenticationv1.ExtraValue
	accepted := func(name string, extra, wantExtra extras) identityCase {
		u := member(extra)
		return asserts(name, u, seen(u, wantExtra), "")
	}
	refused := func(name string, u authenticationv1.UserInfo, logs string) identityCase {
		return asserts(name, u, nil, logs)
	}
	named := func(name string, groups ...string) authenticationv1.UserInfo {
		return authenticationv1.UserInfo{Username: name, Groups: groups}
	}
	return []identityCase{
		refused("empty username", named("", "team-a"), "the username is empty"),
		refused("service account username", named("system:serviceaccount:default:x"), `the username \"system:serviceaccount:default:x\" is in the reserved system: namespace`),
		refused("node username", named("system:node:n1", "system:nodes"), `the username \"system:node:n1\" is in the reserved system: namespace`),
		refused("node username in upper case", named("SYSTEM:NODE:n1"), `the username \"SYSTEM:NODE:n1\" is in the reserved system: namespace`),
		refused("forged original caller", member(extras{"Original-User-Info.kip.dev": {`{"username":"admin"}`}}), "reserved for kip's record of the original caller"),
		accepted("key with a space", extras{"example.com/a b": {"x y"}}, extras{"example.com/a b": {"x y"}}),
		accepted("key with a non-ASCII letter", extras{"example.com/ä": {"ä"}}, extras{"example.com/ä": {"ä"}}),
		accepted("key with a percent sign", extras{"example.com/100%": {"50%"}}, extras{"example.com/100%": {"50%"}}),
		accepted("key that looks percent-encoded", extras{"example.com/%41%2f%zz": {"%41"}}, extras{"example.com/%41%2f%zz": {"%41"}}),
		accepted("key with colon, slash and tchars", extras{"example.com/a:b/c!#$&'*+.^_`|~": {"v"}}, extras{"example.com/a:b/c!#$&'*+.^_`|~": {"v"}}),
		accepted("upper-case key is lower-cased, value kept", extras{"Example.COM/Team": {"Blue", "RED"}}, extras{"example.com/team": {"Blue", "RED"}}),
		accepted("upper-case non-ASCII letter is kept", extras{"example.com/Ä": {"v"}}, extras{"example.com/Ä": {"v"}}),
		accepted("keys differing in non-ASCII case stay two", extras{"example.com/ä": {"small"}, "example.com/Ä": {"capital"}},
			extras{"example.com/ä": {"small"}, "example.com/Ä": {"capital"}}),
		// An identity that cannot travel as Impersonate-* headers, and that
		// kip's signer already refuses to write, is a refused token (401,
		// "authentication failed"), not a 502 or 500 after the fact, and
		// never reaches the upstream.
		func() identityCase {
			// The upstream must not see the name cut at the line break.
			name := harness.UniqueName("eve")
			c := refused("username with CR LF and a header", named(name+"\r\nImpersonate-Group: system:masters", "team-a"), "")
			c.user = name
			return c
		}(),
		refused("extra value with a newline", member(extras{"example.com/team": {"blue\nImpersonate-Group: system:masters"}}), ""),
		refused("extra key with a newline", member(extras{"example.com/a\nb": {"v"}}), ""),
		refused("empty key", member(extras{"": {"v"}, "example.com/team": {"blue"}}), "an extra key is empty"),
		refused("keys differing in ASCII case", member(extras{"example.com/team": {"blue"}, "Example.com/TEAM": {"red"}}), "are the same key upstream"),
	}
}

// oidcIdentityCases are identities in ID tokens that Hydra signs.
func oidcIdentityCases() []identityCase {
	who := func(email string, claims map[string]any) hydra.Person {
		all := map[string]any{"email": email, "groups": []string{}, "pct": "50%"}
		for k, v := range claims {
			all[k] = v
		}
		return hydra.Person{Subject: harness.UniqueName("oidc-sub"), Claims: all}
	}
	signedIn := func(id hydra.Person) func(t *testing.T) string {
		return func(t *testing.T) string { return idToken(t, clientID, id) }
	}
	ok := harness.UniqueName("frank") + "@example.com"
	okID := who(ok, map[string]any{"pct": "100%/ä"})
	return []identityCase{
		{name: "oidc/empty username", token: signedIn(who("", nil)), logs: "the username is empty"},
		{name: "oidc/service account username", token: signedIn(who("system:serviceaccount:default:x", nil)),
			user: "system:serviceaccount:default:x", logs: `the username \"system:serviceaccount:default:x\" is in the reserved system: namespace`},
		{name: "oidc/extra key with percent signs", token: signedIn(okID), want: &authenticationv1.UserInfo{
			Username: ok, UID: okID.Subject, Groups: []string{"system:authenticated"},
			Extra: map[string]authenticationv1.ExtraValue{"idp.kip.dev/issuer": {env.idp.Hydra.IssuerURL}, percentClaimKey: {"100%/ä"}},
		}},
	}
}
