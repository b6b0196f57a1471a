package identity

import (
	"context"
	"crypto/ecdsa"
	"encoding/pem"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kip-proxy/kip/internal/rig/harness"
)

// credentialIDKey is the extra kube-apiserver and kip give every identity,
// naming the credential it used.
const credentialIDKey = "authentication.kubernetes.io/credential-id"

// checkIdentity compares what the upstream saw with what the provider
// asserted, leaving out the credential-id extra, which names the
// credential rather than the person.
func checkIdentity(t *testing.T, got *authenticationv1.UserInfo, want authenticationv1.UserInfo) {
	t.Helper()
	extra := map[string]authenticationv1.ExtraValue{}
	for k, v := range got.Extra {
		if k != credentialIDKey {
			extra[k] = v
		}
	}
	if got.Username != want.Username || got.UID != want.UID || !slices.Equal(got.Groups, want.Groups) {
		t.Errorf("upstream saw %s uid=%q groups=%q, want %s uid=%q groups=%q",
			got.Username, got.UID, got.Groups, want.Username, want.UID, want.Groups)
	}
	for k, v := range want.Extra {
		if !slices.Equal(extra[k], v) {
			t.Errorf("extra %s = %q, want %q (all: %v)", k, extra[k], v, got.Extra)
		}
	}
	if len(extra) != len(want.Extra) {
		t.Errorf("extras %v, want exactly %v", extra, want.Extra)
	}
}

// alice is what the upstream must see for person("alice", "devs").
func idpUser(name string, groups ...string) authenticationv1.UserInfo {
	return authenticationv1.UserInfo{
		Username: name + "@example.com",
		UID:      name + "-sub",
		Groups:   append(groups, "system:authenticated"),
		Extra:    map[string]authenticationv1.ExtraValue{"idp.kip.dev/issuer": {env.idp.Hydra.IssuerURL}},
	}
}

// TestExchangeGivesTheProviderIdentity: an ID token exchanged without a CSR
// gives a certificate and key, and the upstream sees the provider's user,
// groups, UID and extras through kip.
func TestExchangeGivesTheProviderIdentity(t *testing.T) {
	name := harness.UniqueName("alice")
	cred := mustExchange(t, idToken(t, clientID, person(name, "devs", "ops")), nil)
	if cred.ClientKeyData == "" {
		t.Fatal("no private key returned although kip generated it")
	}
	cert := parseCert(t, cred.ClientCertificateData)
	if !cert.NotAfter.Equal(cred.ExpirationTimestamp.Time) {
		t.Errorf("expirationTimestamp %s, certificate NotAfter %s", cred.ExpirationTimestamp, cert.NotAfter)
	}
	if life := time.Until(cert.NotAfter); life > 2*time.Minute+time.Second || life < time.Minute {
		t.Errorf("certificate lives %s more, want about the configured 2m", life)
	}
	got, err := whoami(t, certConfig([]byte(cred.ClientCertificateData), []byte(cred.ClientKeyData)))
	if err != nil {
		t.Fatal(err)
	}
	checkIdentity(t, got, idpUser(name, "devs", "ops"))
	if !strings.HasPrefix(got.Extra[credentialIDKey][0], "X509SHA256=") {
		t.Errorf("credential-id %q, want the certificate's digest", got.Extra[credentialIDKey])
	}
}

// TestProofOfPossession: with a CSR the certificate is for the client's
// key, and no private key comes back.
func TestProofOfPossession(t *testing.T) {
	name := harness.UniqueName("pop")
	key, csr := newCSR(t)
	cred := mustExchange(t, idToken(t, clientID, person(name)), csr)
	if cred.ClientKeyData != "" {
		t.Fatal("a private key came back although the client sent a CSR")
	}
	cert := parseCert(t, cred.ClientCertificateData)
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		t.Fatal("the certificate is not for the CSR's key")
	}
	got, err := whoami(t, certConfig([]byte(cred.ClientCertificateData), keyPEM(t, key)))
	if err != nil {
		t.Fatal(err)
	}
	checkIdentity(t, got, idpUser(name))
}

// TestBearerIDToken: the same ID token, sent straight to kip, is
// impersonated with the same identity.
func TestBearerIDToken(t *testing.T) {
	name := harness.UniqueName("bearer")
	got, err := whoami(t, bearerConfig(idToken(t, clientID, person(name, "devs"))))
	if err != nil {
		t.Fatal(err)
	}
	checkIdentity(t, got, idpUser(name, "devs"))
	if !strings.HasPrefix(got.Extra[credentialIDKey][0], "JTI=") {
		t.Errorf("credential-id %q, want the ID token's jti", got.Extra[credentialIDKey])
	}
}

// TestRBACAppliesToTheProviderUser: the upstream's RBAC decides, for the
// user and for the provider's groups.
func TestRBACAppliesToTheProviderUser(t *testing.T) {
	name := harness.UniqueName("rbac")
	group := harness.UniqueName("team")
	cred := mustExchange(t, idToken(t, clientID, person(name, group)), nil)
	c, err := kubernetes.NewForConfig(certConfig([]byte(cred.ClientCertificateData), []byte(cred.ClientKeyData)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	list := func() error {
		_, err := c.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
		return err
	}
	if err := list(); !apierrors.IsForbidden(err) {
		t.Fatalf("before any binding: %v, want forbidden", err)
	}
	bindGroup(t, group)
	if err := list(); err != nil {
		t.Fatalf("after binding the provider's group %s: %v", group, err)
	}
}

// bindGroup lets group read ConfigMaps in default.
func bindGroup(t *testing.T, group string) {
	t.Helper()
	admin, err := kubernetes.NewForConfig(env.stack.Cluster.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: group},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps", "pods"}, Verbs: []string{"get", "list", "watch"}}},
	}
	if _, err := admin.RbacV1().Roles("default").Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: group},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: group},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: group}},
	}
	if _, err := admin.RbacV1().RoleBindings("default").Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = admin.RbacV1().RoleBindings("default").Delete(context.Background(), group, metav1.DeleteOptions{})
		_ = admin.RbacV1().Roles("default").Delete(context.Background(), group, metav1.DeleteOptions{})
	})
}

// TestWebhookTokens: a token only the webhook knows works as a bearer
// token and in the exchange, with the webhook's UID and extras.
func TestWebhookTokens(t *testing.T) {
	want := authenticationv1.UserInfo{
		Username: webhookUser.Username, UID: webhookUser.UID,
		Groups: append(slices.Clone(webhookUser.Groups), "system:authenticated"),
		Extra:  webhookUser.Extra,
	}
	got, err := whoami(t, bearerConfig(webhookToken))
	if err != nil {
		t.Fatalf("bearer: %v", err)
	}
	checkIdentity(t, got, want)

	cred := mustExchange(t, webhookToken, nil)
	got, err = whoami(t, certConfig([]byte(cred.ClientCertificateData), []byte(cred.ClientKeyData)))
	if err != nil {
		t.Fatalf("exchanged certificate: %v", err)
	}
	checkIdentity(t, got, want)
}

// TestGarbageCSRIsRefused: a CSR that is not one is a 422 naming the
// field, whatever the token.
func TestGarbageCSRIsRefused(t *testing.T) {
	_, good := newCSR(t)
	_, other := newCSR(t)
	block, _ := pem.Decode(good)
	tampered := slices.Clone(block.Bytes)
	tampered[len(tampered)-3] ^= 0xff
	for name, csr := range map[string][]byte{
		"not PEM":        []byte("hello"),
		"PEM of garbage": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte("garbage")}),
		"a certificate":  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: block.Bytes}),
		"bad signature":  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: tampered}),
		"two requests":   append(slices.Clone(good), other...),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := exchange(t, webhookToken, csr)
			if statusCode(err) != http.StatusUnprocessableEntity || !strings.Contains(err.Error(), "spec.certificateSigningRequest") {
				t.Fatalf("exchange = %v (code %d), want 422 naming spec.certificateSigningRequest", err, statusCode(err))
			}
		})
	}
}
