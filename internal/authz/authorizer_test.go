package authz

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/filters/impersonation"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/kubernetes/scheme"
	authorizationv1client "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/rest"
)

// fakeSARServer answers SubjectAccessReviews the way the upstream API
// server would, and keeps every review it was asked.
type fakeSARServer struct {
	status authorizationv1.SubjectAccessReviewStatus
	code   int // answer with this HTTP error instead, when set

	mu   sync.Mutex
	seen []authorizationv1.SubjectAccessReviewSpec
}

func (s *fakeSARServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/apis/authorization.k8s.io/v1/subjectaccessreviews" {
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
		return
	}
	var sar authorizationv1.SubjectAccessReview
	if err := json.NewDecoder(r.Body).Decode(&sar); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.seen = append(s.seen, sar.Spec)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if s.code != 0 {
		w.WriteHeader(s.code)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": s.code, "reason": "Forbidden",
			"message": `subjectaccessreviews.authorization.k8s.io is forbidden: User "system:serviceaccount:kip:kip" cannot create resource "subjectaccessreviews"`,
		})
		return
	}
	sar.Status = s.status
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(&sar)
}

func (s *fakeSARServer) reviews() []authorizationv1.SubjectAccessReviewSpec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]authorizationv1.SubjectAccessReviewSpec(nil), s.seen...)
}

func TestAuthorizer(t *testing.T) {
	alice := &user.DefaultInfo{Name: "alice", UID: "alice-uid", Groups: []string{"devs", user.AllAuthenticated}}
	impersonate := func(resource, namespace, name, subresource string) authorizer.AttributesRecord {
		return authorizer.AttributesRecord{
			User: alice, Verb: "impersonate", ResourceRequest: true,
			APIGroup: groupOf(resource), Resource: resource, Subresource: subresource,
			Namespace: namespace, Name: name,
		}
	}

	tests := []struct {
		name         string
		attrs        authorizer.AttributesRecord
		upstream     authorizationv1.SubjectAccessReviewStatus
		upstreamCode int
		want         authorizer.Decision
		wantErr      bool
		// wantReview is the one SubjectAccessReview the upstream must get;
		// nil means it must not be asked.
		wantReview *authorizationv1.SubjectAccessReviewSpec
	}{
		{
			name:  "empty verb is denied",
			attrs: authorizer.AttributesRecord{User: alice, ResourceRequest: true, Resource: "pods"},
			want:  authorizer.DecisionDeny,
		},
		{
			name:  "empty verb on a non-resource path is denied",
			attrs: authorizer.AttributesRecord{User: alice, Path: "/healthz"},
			want:  authorizer.DecisionDeny,
		},
		{
			name:     "get is the upstream's own decision",
			attrs:    authorizer.AttributesRecord{User: alice, Verb: "get", ResourceRequest: true, Resource: "secrets", Namespace: "kube-system", Name: "admin"},
			upstream: authorizationv1.SubjectAccessReviewStatus{Denied: true},
			want:     authorizer.DecisionAllow,
		},
		{
			name:     "list is the upstream's own decision",
			attrs:    authorizer.AttributesRecord{User: alice, Verb: "list", ResourceRequest: true, Resource: "pods"},
			upstream: authorizationv1.SubjectAccessReviewStatus{Denied: true},
			want:     authorizer.DecisionAllow,
		},
		{
			name:  "non-resource get",
			attrs: authorizer.AttributesRecord{User: alice, Verb: "get", Path: "/version"},
			want:  authorizer.DecisionAllow,
		},
		{
			name:     "impersonating a user the upstream allows",
			attrs:    impersonate("users", "", "bob", ""),
			upstream: authorizationv1.SubjectAccessReviewStatus{Allowed: true},
			want:     authorizer.DecisionAllow,
			wantReview: &authorizationv1.SubjectAccessReviewSpec{
				User: "alice", UID: "alice-uid", Groups: []string{"devs", user.AllAuthenticated},
				ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "impersonate", Resource: "users", Name: "bob"},
			},
		},
		{
			name:     "impersonating a group the upstream denies",
			attrs:    impersonate("groups", "", "system:masters", ""),
			upstream: authorizationv1.SubjectAccessReviewStatus{Denied: true, Reason: "no"},
			want:     authorizer.DecisionDeny,
			wantReview: &authorizationv1.SubjectAccessReviewSpec{
				User: "alice", UID: "alice-uid", Groups: []string{"devs", user.AllAuthenticated},
				ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "impersonate", Resource: "groups", Name: "system:masters"},
			},
		},
		{
			name:     "impersonating a service account the upstream has no opinion on",
			attrs:    impersonate("serviceaccounts", "ns", "sa", ""),
			upstream: authorizationv1.SubjectAccessReviewStatus{},
			want:     authorizer.DecisionNoOpinion,
			wantReview: &authorizationv1.SubjectAccessReviewSpec{
				User: "alice", UID: "alice-uid", Groups: []string{"devs", user.AllAuthenticated},
				ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "impersonate", Resource: "serviceaccounts", Namespace: "ns", Name: "sa"},
			},
		},
		{
			name:     "impersonating an extra",
			attrs:    impersonate("userextras", "", "view", "scopes"),
			upstream: authorizationv1.SubjectAccessReviewStatus{Allowed: true},
			want:     authorizer.DecisionAllow,
			wantReview: &authorizationv1.SubjectAccessReviewSpec{
				User: "alice", UID: "alice-uid", Groups: []string{"devs", user.AllAuthenticated},
				ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "impersonate", Group: "authentication.k8s.io", Resource: "userextras", Subresource: "scopes", Name: "view"},
			},
		},
		{
			name: "reading recorded sessions the upstream allows",
			attrs: authorizer.AttributesRecord{User: alice, Verb: "get", ResourceRequest: true, APIGroup: "sessions.kip.dev", APIVersion: "v1alpha1",
				Resource: "sessions", Subresource: "recording", Namespace: "payments", Name: "a1b2"},
			upstream: authorizationv1.SubjectAccessReviewStatus{Allowed: true},
			want:     authorizer.DecisionAllow,
			wantReview: &authorizationv1.SubjectAccessReviewSpec{
				User: "alice", UID: "alice-uid", Groups: []string{"devs", user.AllAuthenticated},
				ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "get", Group: "sessions.kip.dev", Version: "v1alpha1",
					Resource: "sessions", Subresource: "recording", Namespace: "payments", Name: "a1b2"},
			},
		},
		{
			name: "listing recorded sessions is not kip's to allow",
			attrs: authorizer.AttributesRecord{User: alice, Verb: "list", ResourceRequest: true, APIGroup: "sessions.kip.dev", APIVersion: "v1alpha1",
				Resource: "sessions"},
			upstream: authorizationv1.SubjectAccessReviewStatus{},
			want:     authorizer.DecisionNoOpinion,
			wantReview: &authorizationv1.SubjectAccessReviewSpec{
				User: "alice", UID: "alice-uid", Groups: []string{"devs", user.AllAuthenticated},
				ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "list", Group: "sessions.kip.dev", Version: "v1alpha1", Resource: "sessions"},
			},
		},
		{
			name:         "the upstream refuses the review itself",
			attrs:        impersonate("users", "", "bob", ""),
			upstreamCode: http.StatusForbidden,
			want:         authorizer.DecisionNoOpinion,
			wantErr:      true,
			wantReview: &authorizationv1.SubjectAccessReviewSpec{
				User: "alice", UID: "alice-uid", Groups: []string{"devs", user.AllAuthenticated},
				ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "impersonate", Resource: "users", Name: "bob"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sar := &fakeSARServer{status: tt.upstream, code: tt.upstreamCode}
			srv := httptest.NewServer(sar)
			t.Cleanup(srv.Close)
			client, err := authorizationv1client.NewForConfig(&rest.Config{Host: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			a, err := New(Config{SubjectAccessReview: client, AllowCacheTTL: time.Minute, DenyCacheTTL: time.Minute})
			if err != nil {
				t.Fatal(err)
			}

			got, reason, err := a.Authorize(context.Background(), tt.attrs)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("Authorize() = %v, %q, %v; want %v, error %v", got, reason, err, tt.want, tt.wantErr)
			}
			reviews := sar.reviews()
			switch {
			case tt.wantReview == nil && len(reviews) != 0:
				t.Errorf("the upstream was asked %+v, want it not asked", reviews)
			case tt.wantReview != nil && (len(reviews) != 1 || !reflect.DeepEqual(reviews[0], *tt.wantReview)):
				t.Errorf("the upstream was asked\n%+v\nwant exactly\n%+v", reviews, *tt.wantReview)
			}
		})
	}
}

// TestAuthorizerBehindImpersonationFilter drives the authorizer from
// kube's impersonation filter, as kip's chain does: every part of a
// kubectl --as request is reviewed upstream as the caller.
func TestAuthorizerBehindImpersonationFilter(t *testing.T) {
	alice := &user.DefaultInfo{Name: "alice", Groups: []string{"devs", user.AllAuthenticated}}
	asAlice := func(resource, subresource, name string) authorizationv1.SubjectAccessReviewSpec {
		return authorizationv1.SubjectAccessReviewSpec{
			User: "alice", Groups: []string{"devs", user.AllAuthenticated},
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: "impersonate", Group: groupOf(resource), Version: versionOf(resource), Resource: resource, Subresource: subresource, Name: name,
			},
		}
	}
	tests := []struct {
		name     string
		allowed  bool
		wantCode int
		wantUser string
	}{
		{name: "upstream allows", allowed: true, wantCode: http.StatusOK, wantUser: "bob"},
		{name: "upstream does not allow", allowed: false, wantCode: http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sar := &fakeSARServer{status: authorizationv1.SubjectAccessReviewStatus{Allowed: tt.allowed}}
			srv := httptest.NewServer(sar)
			t.Cleanup(srv.Close)
			client, err := authorizationv1client.NewForConfig(&rest.Config{Host: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			a, err := New(Config{SubjectAccessReview: client})
			if err != nil {
				t.Fatal(err)
			}
			var gotUser string
			h := impersonation.WithImpersonation(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				u, _ := request.UserFrom(r.Context())
				gotUser = u.GetName()
			}), a, scheme.Codecs)

			req := httptest.NewRequest(http.MethodGet, "/api/v1/pods", nil)
			req.Header.Set("Impersonate-User", "bob")
			req.Header.Set("Impersonate-Group", "viewers")
			req.Header.Set("Impersonate-Extra-Scopes", "view")
			req = req.WithContext(request.WithUser(req.Context(), alice))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			if rec.Code != tt.wantCode || gotUser != tt.wantUser {
				t.Errorf("got %d as %q, want %d as %q; body %s", rec.Code, gotUser, tt.wantCode, tt.wantUser, rec.Body)
			}
			want := []authorizationv1.SubjectAccessReviewSpec{asAlice("users", "", "bob")}
			if tt.allowed {
				want = append(want, asAlice("groups", "", "viewers"), asAlice("userextras", "scopes", "view"))
			}
			if got := sar.reviews(); !reflect.DeepEqual(got, want) {
				t.Errorf("the upstream was asked\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func versionOf(resource string) string {
	if groupOf(resource) != "" {
		return "v1"
	}
	return ""
}

func groupOf(resource string) string {
	if resource == "userextras" || resource == "uids" {
		return "authentication.k8s.io"
	}
	return ""
}
