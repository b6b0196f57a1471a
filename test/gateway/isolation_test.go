package gateway

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kip-proxy/kip/internal/rig/harness"
)

// wantFrom fails unless a is a 200 with a ConfigMap that cluster holds.
func wantFrom(t *testing.T, a answer, cluster string) {
	t.Helper()
	var cm corev1.ConfigMap
	if a.code != http.StatusOK || json.Unmarshal([]byte(a.body), &cm) != nil || cm.Data["cluster"] != cluster {
		t.Fatalf("got %s, want 200 with a ConfigMap of cluster %s", a, cluster)
	}
}

// probeEverywhere makes namespace ns's ConfigMap probe on every cluster,
// each saying which cluster it is on, and lets subjects read ConfigMaps
// there: a request that went to the wrong cluster would succeed, with the
// wrong cluster's name.
func probeEverywhere(t *testing.T, subjects ...rbacv1.Subject) string {
	t.Helper()
	ns := namespaceOn(t, clusterNames...)
	for _, name := range clusterNames {
		configMap(t, name, ns, "probe")
		for _, s := range subjects {
			grant(t, name, ns, s, readConfigMaps)
		}
	}
	return ns
}

// TestClusterClientCertificates proves that with --trust-cluster-client-ca
// a certificate from a cluster's own client CA is valid at that cluster
// only, whichever cluster kip met it at first. Each user is allowed to
// read the probe on every cluster, so only kip's refusal stops them.
func TestClusterClientCertificates(t *testing.T) {
	alphaUser, betaUser := harness.UniqueName("alpha-ca-user"), harness.UniqueName("beta-ca-user")
	ns := probeEverywhere(t, userSubject(alphaUser), userSubject(betaUser))
	path := configMapPath(ns, "probe")
	alphaCert, err := gw.members[alpha].clusterCert(alphaUser)
	if err != nil {
		t.Fatal(err)
	}
	betaCert, err := gw.members[beta].clusterCert(betaUser)
	if err != nil {
		t.Fatal(err)
	}
	// The RBAC just granted takes a moment to apply.
	for _, c := range []struct {
		cert    tls.Certificate
		cluster string
	}{{alphaCert, alpha}, {betaCert, beta}} {
		harness.Eventually(t, 30*time.Second, func() error {
			if a, err := get(gw.httpClient(c.cert, "h2"), "/clusters/"+c.cluster+path, ""); err != nil || a.code != http.StatusOK {
				return errorf("%s's own certificate at %s: %v %v", c.cluster, c.cluster, a, err)
			}
			return nil
		})
	}

	cases := []struct {
		name    string
		cert    tls.Certificate
		cluster string
		want    int
	}{
		{"alpha's certificate at alpha", alphaCert, alpha, http.StatusOK},
		{"alpha's certificate at beta", alphaCert, beta, http.StatusUnauthorized},
		{"alpha's certificate at gamma", alphaCert, gamma, http.StatusUnauthorized},
		{"beta's certificate at beta", betaCert, beta, http.StatusOK},
		{"beta's certificate at alpha", betaCert, alpha, http.StatusUnauthorized},
		{"beta's certificate at gamma", betaCert, gamma, http.StatusUnauthorized},
		{"alpha's certificate at alpha again", alphaCert, alpha, http.StatusOK},
	}
	for _, proto := range []string{"h2", "http/1.1"} {
		for _, c := range cases {
			t.Run(proto+"/"+c.name, func(t *testing.T) {
				a := mustGet(t, gw.httpClient(c.cert, proto), "/clusters/"+c.cluster+path, "")
				if c.want == http.StatusOK {
					wantFrom(t, a, c.cluster)
					return
				}
				wantStatus(t, a, c.want)
			})
		}
	}
	for _, name := range []string{beta, gamma} {
		wantUnseen(t, name, "", alphaUser)
	}
	for _, name := range []string{alpha, gamma} {
		wantUnseen(t, name, "", betaUser)
	}
}

// TestServiceAccountTokens proves a ServiceAccount token is reviewed only
// by the cluster it is addressed to. alpha and beta each have a
// ServiceAccount of the same namespace and name, allowed to read the
// probe, so a token accepted at the wrong cluster would pass there too.
func TestServiceAccountTokens(t *testing.T) {
	ctx := context.Background()
	const sa = "app"
	subject := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: sa}
	ns := probeEverywhere(t)
	tokens := map[string]string{}
	for _, name := range []string{alpha, beta} {
		subject.Namespace = ns
		grant(t, name, ns, subject, readConfigMaps)
		admin := gw.members[name].admin
		if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		token, err := serviceAccountToken(ctx, admin, ns, sa)
		if err != nil {
			t.Fatal(err)
		}
		tokens[name] = token
	}
	path := configMapPath(ns, "probe")
	client := gw.httpClient(tls.Certificate{}, "h2")
	for _, name := range []string{alpha, beta} {
		harness.Eventually(t, 30*time.Second, func() error {
			if a, err := get(client, "/clusters/"+name+path, tokens[name]); err != nil || a.code != http.StatusOK {
				return errorf("%s's token at %s: %v %v", name, name, a, err)
			}
			return nil
		})
	}

	cases := []struct {
		name         string
		tokenOf      string
		cluster      string
		want         int
		wantNotFound bool
	}{
		{"alpha's token at alpha", alpha, alpha, http.StatusOK, false},
		{"alpha's token at beta", alpha, beta, http.StatusUnauthorized, false},
		{"alpha's token at gamma", alpha, gamma, http.StatusUnauthorized, false},
		{"beta's token at beta", beta, beta, http.StatusOK, false},
		{"beta's token at alpha", beta, alpha, http.StatusUnauthorized, false},
		{"alpha's token at a cluster kip does not front", alpha, "nosuch", http.StatusNotFound, true},
		{"a token that is not one at alpha", "", alpha, http.StatusUnauthorized, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			token := tokens[c.tokenOf]
			if c.tokenOf == "" {
				token = "not-a-token"
			}
			a := mustGet(t, client, "/clusters/"+c.cluster+path, token)
			if c.want == http.StatusOK {
				wantFrom(t, a, c.cluster)
				return
			}
			wantStatus(t, a, c.want)
		})
	}
}

// TestPathsNameOneCluster sends hostile paths whose first segment after
// /clusters/ is alpha, or no cluster at all, at a ConfigMap only beta
// holds, as a user who may read it on every cluster. Only the path that
// names beta first may reach it; beta's and gamma's audit logs show the
// others never arrived. Cases that name alpha reach alpha with the rest of
// the path unchanged, where RBAC refuses the odd non-resource path.
func TestPathsNameOneCluster(t *testing.T) {
	user := harness.UniqueName("walker")
	ns := namespaceOn(t, clusterNames...)
	marker := harness.UniqueName("only-on-beta")
	configMap(t, beta, ns, marker)
	configMap(t, beta, ns, "warm-up")
	for _, name := range clusterNames {
		grant(t, name, ns, userSubject(user), readConfigMaps)
	}
	target := configMapPath(ns, marker)
	client := gw.httpClient(userTLS(t, user), "http/1.1")
	// Once RBAC lets the user read on beta, a misrouted request would pass.
	harness.Eventually(t, 30*time.Second, func() error {
		if a, err := get(client, "/clusters/beta"+configMapPath(ns, "warm-up"), ""); err != nil || a.code != http.StatusOK {
			return errorf("the plain path to beta: %v %v", a, err)
		}
		return nil
	})

	cases := []struct {
		name string
		path string
		// alphaSees is the path alpha's RBAC refuses, as alpha decoded it:
		// the rest of the path after /clusters/alpha, unchanged. Empty:
		// kip refuses the path itself with a 404 Status.
		alphaSees string
	}{
		{"dot-dot after alpha", "/clusters/alpha/../beta" + target, "/../beta" + target},
		{"two dot-dots after alpha", "/clusters/alpha/../../clusters/beta" + target, "/../../clusters/beta" + target},
		{"encoded dot-dot after alpha", "/clusters/alpha/%2e%2e/beta" + target, "/../beta" + target},
		{"upper-case encoded dot-dot after alpha", "/clusters/alpha/%2E%2E/beta" + target, "/../beta" + target},
		{"double slash after alpha", "/clusters/alpha//beta" + target, "//beta" + target},
		{"encoded slash after alpha", "/clusters/alpha/%2Fbeta" + target, "//beta" + target},
		{"encoded slash in the name", "/clusters/alpha%2F..%2Fbeta" + target, ""},
		{"lower-case encoded slash in the name", "/clusters/alpha%2fbeta" + target, ""},
		{"dot-dot as the name", "/clusters/../clusters/beta" + target, ""},
		{"encoded dot-dot as the name", "/clusters/%2e%2e/beta" + target, ""},
		{"empty name", "/clusters//beta" + target, ""},
		{"double slash before clusters", "//clusters/beta" + target, ""},
		{"encoded name", "/clusters/%62eta" + target, ""},
		{"upper-case name", "/clusters/BETA" + target, ""},
		{"name with a trailing dot", "/clusters/beta." + target, ""},
		{"unknown cluster", "/clusters/nosuch" + target, ""},
		{"no cluster", target, ""},
		{"a namespace path as the name", "/clusters" + target, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := mustGet(t, client, c.path, "")
			if c.alphaSees == "" {
				wantStatus(t, a, http.StatusNotFound)
				return
			}
			wantStatus(t, a, http.StatusForbidden)
			if want := fmt.Sprintf("User %q cannot get path %q", user, c.alphaSees); !strings.Contains(a.status.Message, want) {
				t.Fatalf("alpha answered %q, want it to say %s", a.status.Message, want)
			}
		})
	}
	for _, name := range []string{beta, gamma} {
		wantUnseen(t, name, marker)
	}

	t.Run("the path that names beta", func(t *testing.T) {
		wantFrom(t, mustGet(t, client, "/clusters/beta"+target, ""), beta)
	})
}

// TestAccessPolicy registers beta a second time, as guarded-<id>, with
// an access policy of a group and a CEL expression. Every user here may
// read the probe on beta; the policy alone decides who reaches it through
// the guarded entry. A refused user gets 403 and beta never hears of them.
func TestAccessPolicy(t *testing.T) {
	guarded := harness.UniqueName("guarded")
	named := harness.UniqueName("named")
	policy := &access{Groups: []string{"beta-admins"}, Expression: fmt.Sprintf("'sre' in user.groups || user.username == '%s'", named)}
	users := []struct {
		name   string
		user   string
		groups []string
		want   int
	}{
		{"in the allowed group", harness.UniqueName("admin"), []string{"devs", "beta-admins"}, http.StatusOK},
		{"passes the expression by group", harness.UniqueName("sre"), []string{"sre"}, http.StatusOK},
		{"passes the expression by name", named, nil, http.StatusOK},
		{"in neither", harness.UniqueName("dev"), []string{"devs"}, http.StatusForbidden},
		{"in no group", harness.UniqueName("loner"), nil, http.StatusForbidden},
		{"in look-alike groups", harness.UniqueName("mimic"), []string{"BETA-ADMINS", "beta-admins ", "beta-admins-x", "SRE", "sre-x"}, http.StatusForbidden},
		{"named like the allowed user", named + "x", []string{"devs"}, http.StatusForbidden},
	}
	var subjects []rbacv1.Subject
	for _, u := range users {
		subjects = append(subjects, userSubject(u.user))
	}
	ns := probeEverywhere(t, subjects...)
	path := "/clusters/" + guarded + configMapPath(ns, "probe")

	data, err := gw.entry(gw.members[beta], gw.members[beta].kipCred, policy)
	if err != nil {
		t.Fatal(err)
	}
	removeEntryAfter(t, guarded+".kubeconfig")
	if err := gw.putEntry(guarded+".kubeconfig", data); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 30*time.Second, func() error {
		a, err := get(gw.httpClient(userTLS(t, users[0].user, users[0].groups...), "h2"), path, "")
		if err != nil || a.code != http.StatusOK {
			return errorf("the guarded entry for an allowed user: %v %v", a, err)
		}
		return nil
	})

	var refused []string
	for _, u := range users {
		t.Run(u.name, func(t *testing.T) {
			a := mustGet(t, gw.httpClient(userTLS(t, u.user, u.groups...), "h2"), path, "")
			if u.want == http.StatusOK {
				wantFrom(t, a, beta)
				return
			}
			wantStatus(t, a, u.want)
		})
		if u.want != http.StatusOK {
			refused = append(refused, u.user)
		}
	}
	wantUnseen(t, beta, "", refused...)

	// beta's RBAC lets each of them in: the 403 came from the policy.
	t.Run("refused users through the unguarded entry", func(t *testing.T) {
		for _, u := range users {
			if u.want != http.StatusOK {
				wantFrom(t, mustGet(t, gw.httpClient(userTLS(t, u.user, u.groups...), "h2"), "/clusters/beta"+configMapPath(ns, "probe"), ""), beta)
			}
		}
	})
}

// removeEntryAfter removes file from the clusters directory when the test
// ends.
func removeEntryAfter(t *testing.T, file string) {
	t.Cleanup(func() { _ = os.Remove(gw.clustersDir + "/" + file) })
}
