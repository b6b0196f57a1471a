package integration

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/headers"
	"github.com/kip-proxy/kip/internal/rig/devstack"
	"github.com/kip-proxy/kip/internal/rig/harness"
)

// Rule 2 of docs/security.md: nothing the client chose reaches the upstream.
// Impersonate-*, front-proxy and forwarding headers, in every letter case and
// named in Connection, never change who runs or what the upstream audits.
// smuggling_test.go and paths_test.go hold the framing and path cases.

// TestAdversarialImpersonationHeaders sends Impersonate-* headers in every
// letter case, twice, empty and incomplete, from a caller that may
// impersonate exactly one user. Every spelling Go's server reads as an
// impersonation header goes through the SubjectAccessReview-checked filter:
// it takes effect only for the allowed user, the first value of a repeated
// Impersonate-User is the one checked and used, and the rest get 400 or
// 403. Each case sent straight to kube-apiserver gets the same answer, but
// for the empty headers that kip alone refuses.
func TestAdversarialImpersonationHeaders(t *testing.T) {
	const group = "adversarial-callers"
	caller, allowed := harness.UniqueName("adv-imp"), harness.UniqueName("adv-allowed")
	grantCluster(t, userSubject(caller), rbacv1.PolicyRule{
		APIGroups: []string{""}, Resources: []string{"users"}, Verbs: []string{"impersonate"}, ResourceNames: []string{allowed},
	})
	cert := rawUserCert(t, caller, group)
	waitForImpersonationRight(t, cert, allowed)

	const forbidden = "someone-else"
	cases := []adversarialCase{
		{name: "IMPERSONATE-USER in upper case, allowed user",
			header: []rawHeader{{"IMPERSONATE-USER", allowed}}, wantCode: http.StatusCreated, wantUser: allowed},
		{name: "impersonate-user in lower case, allowed user",
			header: []rawHeader{{"impersonate-user", allowed}}, wantCode: http.StatusCreated, wantUser: allowed},
		{name: "iMpErSoNaTe-UsEr in mixed case, allowed user",
			header: []rawHeader{{"iMpErSoNaTe-UsEr", allowed}}, wantCode: http.StatusCreated, wantUser: allowed},
		{name: "iMpErSoNaTe-UsEr in mixed case, user not allowed",
			header: []rawHeader{{"iMpErSoNaTe-UsEr", forbidden}}, wantCode: http.StatusForbidden},
		{name: "IMPERSONATE-GROUP in upper case beside an allowed user",
			header: []rawHeader{{"Impersonate-User", allowed}, {"IMPERSONATE-GROUP", "system:masters"}}, wantCode: http.StatusForbidden},
		{name: "iMpErSoNaTe-ExTrA-sCoPeS in mixed case beside an allowed user",
			header: []rawHeader{{"Impersonate-User", allowed}, {"iMpErSoNaTe-ExTrA-sCoPeS", "x"}}, wantCode: http.StatusForbidden},
		{name: "IMPERSONATE-UID in upper case beside an allowed user",
			header: []rawHeader{{"Impersonate-User", allowed}, {"IMPERSONATE-UID", "x"}}, wantCode: http.StatusForbidden},
		// Repeated and combined values.
		{name: "Impersonate-User twice, allowed user first: the first is checked and used",
			header: []rawHeader{{"Impersonate-User", allowed}, {"Impersonate-User", devstack.KipUser}}, wantCode: http.StatusCreated, wantUser: allowed},
		{name: "Impersonate-User twice, allowed user second",
			header: []rawHeader{{"Impersonate-User", forbidden}, {"Impersonate-User", allowed}}, wantCode: http.StatusForbidden},
		{name: "two users in one Impersonate-User value",
			header: []rawHeader{{"Impersonate-User", allowed + ", " + forbidden}}, wantCode: http.StatusForbidden},
		// Groups, uids and extras without a user are malformed.
		{name: "impersonate-group in lower case without a user",
			header: []rawHeader{{"impersonate-group", "system:masters"}}, wantCode: http.StatusBadRequest},
		{name: "IMPERSONATE-EXTRA-SCOPES in upper case without a user",
			header: []rawHeader{{"IMPERSONATE-EXTRA-SCOPES", "x"}}, wantCode: http.StatusBadRequest},
		{name: "iMpErSoNaTe-UiD alone in mixed case",
			header: []rawHeader{{"iMpErSoNaTe-UiD", "x"}}, wantCode: http.StatusBadRequest},
		{name: "Impersonate-Group and Impersonate-Extra without a user",
			header: []rawHeader{{"Impersonate-Group", "system:masters"}, {"Impersonate-Extra-Scopes", "x"}}, wantCode: http.StatusBadRequest},
		// Empty values.
		// kube-apiserver ignores an empty header that asks for nothing;
		// kip refuses it (withUnusedImpersonationRefused).
		{name: "empty Impersonate-Uid alone",
			header: []rawHeader{{"Impersonate-Uid", ""}}, wantCode: http.StatusBadRequest, upstreamCode: http.StatusCreated},
		{name: "empty Impersonate-User beside a group",
			header: []rawHeader{{"Impersonate-User", ""}, {"Impersonate-Group", "system:masters"}}, wantCode: http.StatusBadRequest},
		{name: "empty Impersonate-User twice",
			header: []rawHeader{{"Impersonate-User", ""}, {"Impersonate-User", ""}}, wantCode: http.StatusBadRequest, upstreamCode: http.StatusCreated},
		{name: "empty Impersonate-Group beside an allowed user",
			header: []rawHeader{{"Impersonate-User", allowed}, {"Impersonate-Group", ""}}, wantCode: http.StatusForbidden},
		{name: "empty Impersonate-Extra beside an allowed user",
			header: []rawHeader{{"Impersonate-User", allowed}, {"Impersonate-Extra-Scopes", ""}}, wantCode: http.StatusForbidden},
		// The filter asks for no uid and removes the empty header with
		// the others, so it has no effect.
		{name: "empty Impersonate-Uid beside an allowed user",
			header: []rawHeader{{"Impersonate-User", allowed}, {"Impersonate-Uid", ""}}, wantCode: http.StatusCreated, wantUser: allowed},
		// Hop-by-hop: naming a header in Connection neither hides it from
		// the filter nor strips what kip sets in its place.
		{name: "allowed Impersonate-User named in Connection", http1Only: true,
			header: []rawHeader{{"Connection", "Impersonate-User"}, {"Impersonate-User", allowed}}, wantCode: http.StatusCreated, wantUser: allowed},
		{name: "Impersonate-Group named in Connection beside an allowed user", http1Only: true,
			header: []rawHeader{{"Connection", "Impersonate-Group"}, {"Impersonate-User", allowed}, {"Impersonate-Group", "system:masters"}}, wantCode: http.StatusForbidden},
		{name: "Connection names Impersonate-User and X-Forwarded-For with no impersonation", http1Only: true,
			header: []rawHeader{{"Connection", "Impersonate-User, X-Forwarded-For, Authorization"}, {"X-Forwarded-For", "203.0.113.7"}}, wantCode: http.StatusCreated, wantUser: caller},
	}
	for i := range cases {
		cases[i].cert = true
	}
	runAdversarialCases(t, cert, cases)
	compareWithUpstream(t, cert, cases)
}

// waitForImpersonationRight waits until the upstream lets the holder of
// cert impersonate user: RBAC takes a moment to follow a new binding.
func waitForImpersonationRight(t *testing.T, cert *tls.Certificate, user string) {
	t.Helper()
	client := rawClient(t, rawHTTP2, cert)
	req := selfSubjectReview
	req.header = []rawHeader{{"Impersonate-User", user}}
	harness.Eventually(t, 30*time.Second, func() error {
		res, err := rawTry(client, rawHTTP2, req)
		if err != nil {
			return err
		}
		return checkServedAs(res, user)
	})
}

// TestAdversarialFrontProxyHeaders sends front-proxy identity headers in
// forms the hostile tests do not: other letter cases, several values, a
// percent-encoded extra that names kip's own record of the original caller,
// and names listed in Connection. kube-apiserver here believes X-Remote-*
// from kip, so any that leaked would change the SelfSubjectReview.
func TestAdversarialFrontProxyHeaders(t *testing.T) {
	const group = "adversarial-callers"
	caller := harness.UniqueName("adv-remote")
	cert := rawUserCert(t, caller, group)
	originalKey := "X-Remote-Extra-" + strings.ReplaceAll(headers.OriginalUserExtraKey, ".", "%2E")
	forgedOriginal := `{"username":"kip-admin","groups":["system:masters"]}`
	tests := []struct {
		name      string
		header    []rawHeader
		http1Only bool
	}{
		{name: "upper case", header: []rawHeader{
			{"X-REMOTE-USER", "admin"}, {"X-REMOTE-GROUP", "system:masters"}, {"X-REMOTE-EXTRA-SCOPES", "x"}, {"X-REMOTE-UID", "admin-uid"}}},
		{name: "several values in mixed case", header: []rawHeader{
			{"x-ReMoTe-UsEr", "admin"}, {"x-ReMoTe-UsEr", "kip-admin"}, {"X-Remote-Group", "system:masters"}, {"X-Remote-Group", "system:nodes"}}},
		{name: "percent-encoded extra forging kip's original-caller record", header: []rawHeader{
			{"X-Remote-User", "admin"}, {originalKey, forgedOriginal}, {"X-Remote-Extra-" + headers.OriginalUserExtraKey, forgedOriginal}}},
		{name: "named in Connection", http1Only: true, header: []rawHeader{
			{"Connection", "X-Remote-User, X-Remote-Group"}, {"X-Remote-User", "admin"}, {"X-Remote-Group", "system:masters"}}},
		{name: "beside a forwarded-for chain naming kip itself", header: []rawHeader{
			{"X-Remote-User", devstack.KipUser}, {"X-Forwarded-For", "127.0.0.1, 127.0.0.1"}, {"X-Forwarded-Proto", "http"}, {"X-Forwarded-Host", "kubernetes.default.svc"}}},
	}
	for _, proto := range rawProtos {
		t.Run(proto.String(), func(t *testing.T) {
			client := rawClient(t, proto, cert)
			for _, tt := range tests {
				if tt.http1Only && proto != rawHTTP1 {
					continue
				}
				t.Run(tt.name, func(t *testing.T) {
					req := selfSubjectReview
					req.header = tt.header
					res := rawDo(t, client, proto, req)
					if res.code != http.StatusCreated {
						t.Fatalf("got %d, want 201: %s", res.code, res.body)
					}
					got, err := reviewedUser(res.body)
					if err != nil {
						t.Fatal(err)
					}
					assertOnlyCaller(t, got, caller, group)
				})
			}
		})
	}
}

// TestAdversarialForwardingHeadersOnPassThrough checks, in the upstream's
// audit log, that a caller whose own token kip passes through cannot put an
// address of its choosing among the source IPs either, including with
// X-Forwarded-For named in Connection.
// TestHostileForwardingHeadersDoNotReachAudit covers impersonated callers.
func TestAdversarialForwardingHeadersOnPassThrough(t *testing.T) {
	ns := createNamespace(t)
	const account = "adversarial-xff"
	token := serviceAccountToken(t, ns, account)
	saUser := "system:serviceaccount:" + ns + ":" + account
	spoofed := []string{"203.0.113.21", "203.0.113.22", "203.0.113.23"}
	for _, proto := range rawProtos {
		t.Run(proto.String(), func(t *testing.T) {
			client := rawClient(t, proto, nil)
			marker := harness.UniqueName("marker")
			header := []rawHeader{
				{"Authorization", "Bearer " + token},
				{"X-FORWARDED-FOR", spoofed[0]}, {"x-real-ip", spoofed[1]}, {"X-Forwarded-For", spoofed[2]},
				{"X-Remote-User", "admin"},
			}
			if proto == rawHTTP1 {
				header = append(header, rawHeader{"Connection", "X-Forwarded-For, X-Real-Ip"})
			}
			res := rawDo(t, client, proto, rawRequest{path: "/api/v1/namespaces/" + ns + "/configmaps/" + marker, header: header})
			// The account has no rights: the upstream, not kip, says 403.
			if st := mustRawStatus(t, res, http.StatusForbidden); !strings.Contains(st.Message, saUser) {
				t.Fatalf("the 403 does not name the account %s: %s", saUser, st.Message)
			}
			for _, ev := range auditEvents(t, marker) {
				if ev.User.Username != saUser || ev.ImpersonatedUser != nil {
					t.Errorf("audit event %s: user %q impersonating %+v, want the pass-through account %s alone", ev.AuditID, ev.User.Username, ev.ImpersonatedUser, saUser)
				}
				if len(ev.SourceIPs) == 0 || ev.SourceIPs[0] != loopback {
					t.Errorf("audit event %s: source IPs %v, want the client's %s first", ev.AuditID, ev.SourceIPs, loopback)
				}
				for _, ip := range ev.SourceIPs {
					if slices.Contains(spoofed, ip) {
						t.Errorf("audit event %s lists the spoofed source IP %s: %v", ev.AuditID, ip, ev.SourceIPs)
					}
				}
			}
		})
	}
}

// TestHostileHeadersDoNotChangeWhoRuns sends a valid certificate together
// with headers that try to change who the request runs as, or to strip the
// impersonation kip adds so that it would run as kip itself. The upstream's
// own answer to "who am I" must name the caller and only the caller.
func TestHostileHeadersDoNotChangeWhoRuns(t *testing.T) {
	const group = "hostile-callers"
	caller := harness.UniqueName("hostile")
	callerCert := rawUserCert(t, caller, group)

	tests := []struct {
		name      string
		header    []rawHeader
		http1Only bool
	}{
		{name: "no hostile header"},
		{name: "Connection names Impersonate-User and Authorization, with a garbage token", http1Only: true,
			header: []rawHeader{{"Connection", "Impersonate-User, Authorization"}, {"Authorization", "Bearer garbage"}}},
		{name: "Connection names Impersonate-User", http1Only: true,
			header: []rawHeader{{"Connection", "Impersonate-User"}}},
		{name: "Connection names every impersonation header", http1Only: true,
			header: []rawHeader{{"Connection", "Impersonate-User, Impersonate-Group, Impersonate-Uid, Impersonate-Extra-Foo, keep-alive"}}},
		{name: "garbage token beside the certificate",
			header: []rawHeader{{"Authorization", "Bearer garbage"}}},
		{name: "spoofed front-proxy identity",
			header: []rawHeader{
				{"X-Remote-User", "admin"}, {"X-Remote-Group", "system:masters"}, {"X-Remote-Extra-Foo", "bar"},
				{"x-remote-uid", "admin-uid"}, {"X-Forwarded-For", "203.0.113.7"}, {"X-Real-Ip", "203.0.113.8"},
			}},
	}
	for _, proto := range rawProtos {
		t.Run(proto.String(), func(t *testing.T) {
			for _, tt := range tests {
				if tt.http1Only && proto != rawHTTP1 {
					continue
				}
				t.Run(tt.name, func(t *testing.T) {
					client := rawClient(t, proto, callerCert)
					req := selfSubjectReview
					req.header = tt.header
					res := rawDo(t, client, proto, req)
					if res.code != http.StatusCreated {
						t.Fatalf("SelfSubjectReview: got %d, want 201: %s", res.code, res.body)
					}
					var review authenticationv1.SelfSubjectReview
					if err := json.Unmarshal(res.body, &review); err != nil {
						t.Fatalf("decoding the SelfSubjectReview: %v: %s", err, res.body)
					}
					assertOnlyCaller(t, review.Status.UserInfo, caller, group)
				})
			}
		})
	}
}

// assertOnlyCaller fails unless got is exactly the certificate user caller
// in group, as kube-apiserver sees one: no spoofed group, extra or uid, and
// not kip's own account.
func assertOnlyCaller(t *testing.T, got authenticationv1.UserInfo, caller, group string) {
	t.Helper()
	if got.Username == devstack.KipUser {
		t.Fatalf("the request ran as kip itself: %+v", got)
	}
	if got.Username != caller {
		t.Fatalf("the upstream saw user %q, want %q: %+v", got.Username, caller, got)
	}
	groups := slices.Sorted(slices.Values(got.Groups))
	if want := []string{group, "system:authenticated"}; !slices.Equal(groups, want) {
		t.Errorf("the upstream saw groups %q, want %q", groups, want)
	}
	if got.UID != "" {
		t.Errorf("the upstream saw uid %q, want none", got.UID)
	}
	for key := range got.Extra {
		// kube-apiserver 1.37 gives certificate users a credential-id, and
		// kip forwards it; nothing else is theirs.
		if key != "authentication.kubernetes.io/credential-id" {
			t.Errorf("the upstream saw extra %q=%q, which the caller never proved", key, got.Extra[key])
		}
	}
}

// TestHostileForwardingHeadersDoNotReachAudit checks, in the upstream's own
// audit log, that a caller cannot put an address of its choosing among the
// request's source IPs: kube-apiserver believes X-Forwarded-For and
// X-Real-Ip from whoever sends them.
func TestHostileForwardingHeadersDoNotReachAudit(t *testing.T) {
	spoofed := []string{"203.0.113.7", "203.0.113.8", "203.0.113.9", "203.0.113.10"}
	t.Run("control: kube-apiserver believes them when sent to it directly", func(t *testing.T) {
		// Without this the check below could pass only because the
		// upstream ignores the headers.
		cfg, err := stack.Cluster.UserConfig(harness.UniqueName("direct"))
		if err != nil {
			t.Fatal(err)
		}
		client, err := rest.HTTPClientFor(cfg)
		if err != nil {
			t.Fatal(err)
		}
		marker := harness.UniqueName("marker")
		req, err := http.NewRequest(http.MethodGet, stack.Cluster.URL+"/api/v1/namespaces/default/configmaps/"+marker, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Forwarded-For", spoofed[0])
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		events := auditEvents(t, marker)
		if !slices.Contains(events[0].SourceIPs, spoofed[0]) {
			t.Fatalf("kube-apiserver ignored X-Forwarded-For sent to it directly (source IPs %v); this test proves nothing", events[0].SourceIPs)
		}
	})
	for _, proto := range rawProtos {
		t.Run(proto.String(), func(t *testing.T) {
			caller := harness.UniqueName("hostile")
			client := rawClient(t, proto, rawUserCert(t, caller))
			marker := harness.UniqueName("marker")
			res := rawDo(t, client, proto, rawRequest{
				path: "/api/v1/namespaces/default/configmaps/" + marker,
				header: []rawHeader{
					{"X-Forwarded-For", spoofed[0]}, {"X-Real-Ip", spoofed[1]},
					{"x-forwarded-for", spoofed[2] + ", " + spoofed[3]}, {"Forwarded", "for=" + spoofed[2]},
					{"X-Remote-User", "admin"}, {"X-Remote-Group", "system:masters"},
				},
			})
			// The caller has no rights: the upstream, not kip, says 403.
			mustRawStatus(t, res, http.StatusForbidden)

			// The RequestReceived event is written before kube-apiserver's
			// impersonation filter runs; wait for the one that has it.
			var events []auditv1.Event
			harness.Eventually(t, 30*time.Second, func() error {
				events = auditEvents(t, marker)
				for _, ev := range events {
					if ev.Stage == auditv1.StageResponseComplete {
						return nil
					}
				}
				return fmt.Errorf("no ResponseComplete audit event for %q yet", marker)
			})
			for _, ev := range events {
				for _, ip := range ev.SourceIPs {
					if slices.Contains(spoofed, ip) {
						t.Errorf("audit event %s (stage %s) lists the spoofed source IP %s: %v", ev.AuditID, ev.Stage, ip, ev.SourceIPs)
					}
				}
				if ev.User.Username != devstack.KipUser {
					t.Errorf("audit event %s: authenticated user %q, want kip's own %q", ev.AuditID, ev.User.Username, devstack.KipUser)
				}
				if ev.Stage != auditv1.StageResponseComplete {
					continue
				}
				if ev.ImpersonatedUser == nil || ev.ImpersonatedUser.Username != caller {
					t.Errorf("audit event %s: impersonated user %+v, want %q", ev.AuditID, ev.ImpersonatedUser, caller)
				} else if slices.Contains(ev.ImpersonatedUser.Groups, "system:masters") {
					t.Errorf("audit event %s: impersonated groups %q include system:masters", ev.AuditID, ev.ImpersonatedUser.Groups)
				}
			}
			t.Logf("%d audit events, source IPs %v", len(events), events[0].SourceIPs)
		})
	}
}
