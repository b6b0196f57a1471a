package deploy

import (
	"context"
	"slices"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
)

// gatewayValues turn on gateway mode with two clusters rendered from the
// values, one with an access policy.
const gatewayValues = `
clusters:
  secrets: {enabled: true}
  list:
  - name: prod-eu
    kubeconfig: |
      apiVersion: v1
      kind: Config
      clusters:
      - name: prod-eu
        cluster:
          server: https://prod-eu.example.com
          extensions:
          - name: kip.dev/access
            extension:
              groups: [prod-admins]
              expression: "'sre' in user.groups"
      users: [{name: kip, user: {token: prod-eu-token}}]
      contexts: [{name: prod-eu, context: {cluster: prod-eu, user: kip}}]
      current-context: prod-eu
  - name: staging
    kubeconfig: |
      apiVersion: v1
      kind: Config
      clusters: [{name: staging, cluster: {server: https://staging.example.com}}]
      users: [{name: kip, user: {token: staging-token}}]
      contexts: [{name: staging, context: {cluster: staging, user: kip}}]
      current-context: staging
`

// clusterSecretsRules are the rights of Role kip-clusters: reading the
// Secrets of kip's namespace. RBAC cannot narrow them to the labelled ones.
var clusterSecretsRules = []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch"}}}

// TestChartGatewayMode: clusters.secrets.enabled points kip at the cluster
// Secrets of its own namespace, and each entry of clusters.list becomes one
// such Secret, labelled with its name, with the kubeconfig as given. The
// defaults leave gateway mode off.
func TestChartGatewayMode(t *testing.T) {
	tests := []struct {
		name, values, label string
		clusters            []string
	}{
		{name: "defaults"},
		{name: "Secrets only", values: "clusters: {secrets: {enabled: true}}", label: "kip.dev/cluster"},
		{name: "another label", values: "clusters: {secrets: {enabled: true}, secretLabel: example.com/kip-cluster}", label: "example.com/kip-cluster"},
		{name: "clusters from values", values: gatewayValues, label: "kip.dev/cluster", clusters: []string{"prod-eu", "staging"}},
	}
	const ns = "kip-gateway"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := mustRender(t, tt.values, ns)
			args := flagValues(deployment(t, objs).Spec.Template.Spec.Containers[0].Args)
			switch {
			case tt.label == "" && (args["--clusters-secret-namespace"] != "" || args["--clusters-secret-label"] != ""):
				t.Errorf("gateway flags %v without gateway mode", args)
			case tt.label != "" && (args["--clusters-secret-namespace"] != ns || args["--clusters-secret-label"] != tt.label):
				t.Errorf("--clusters-secret-namespace=%s --clusters-secret-label=%s, want %s and %s",
					args["--clusters-secret-namespace"], args["--clusters-secret-label"], ns, tt.label)
			}
			roles := names(ofKind(objs, "Role"))
			if got := slices.Contains(roles, "kip-clusters"); got != (tt.label != "") {
				t.Errorf("Roles %v: Role kip-clusters rendered %v, want %v", roles, got, tt.label != "")
			}

			var got []string
			for _, o := range ofKind(objs, "Secret") {
				var s corev1.Secret
				fromUnstructured(t, o, &s)
				name, ok := s.Labels[tt.label]
				if !ok || tt.label == "" {
					continue
				}
				got = append(got, name)
				if s.Name != "kip-cluster-"+name || s.Namespace != ns {
					t.Errorf("cluster %s is in Secret %s/%s, want %s/kip-cluster-%s", name, s.Namespace, s.Name, ns, name)
				}
				if len(s.StringData) != 1 {
					t.Errorf("Secret %s has keys %v, want kubeconfig alone", s.Name, s.StringData)
				}
				cfg, err := clientcmd.Load([]byte(s.StringData["kubeconfig"]))
				if err != nil || cfg.CurrentContext != name {
					t.Errorf("Secret %s: kubeconfig %v, %v; want one whose current context is %s", s.Name, cfg, err, name)
				}
			}
			if !slices.Equal(got, tt.clusters) {
				t.Errorf("cluster Secrets %v, want %v", got, tt.clusters)
			}
		})
	}
}

// TestChartGatewayRights applies the chart's rights in gateway mode for
// real and asks the API server what kip's ServiceAccount may do: read the
// Secrets of its own namespace, and no other namespace's; impersonate no
// one in the cluster it runs in.
func TestChartGatewayRights(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	ns := createNamespace(t, "kip-gateway-rights")
	other := createNamespace(t, "kip-gateway-elsewhere")
	applyRights(t, mustRender(t, gatewayValues, ns))
	user := "system:serviceaccount:" + ns + ":kip"
	groups := []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
	tests := []struct {
		name    string
		attrs   authorizationv1.ResourceAttributes
		allowed bool
	}{
		{"list the Secrets of its namespace", authorizationv1.ResourceAttributes{Verb: "list", Namespace: ns, Resource: "secrets"}, true},
		{"watch them", authorizationv1.ResourceAttributes{Verb: "watch", Namespace: ns, Resource: "secrets"}, true},
		{"get one", authorizationv1.ResourceAttributes{Verb: "get", Namespace: ns, Resource: "secrets", Name: "kip-cluster-prod-eu"}, true},
		{"update a cluster Secret", authorizationv1.ResourceAttributes{Verb: "update", Namespace: ns, Resource: "secrets", Name: "kip-cluster-prod-eu"}, false},
		{"delete one", authorizationv1.ResourceAttributes{Verb: "delete", Namespace: ns, Resource: "secrets", Name: "kip-cluster-prod-eu"}, false},
		{"list Secrets elsewhere", authorizationv1.ResourceAttributes{Verb: "list", Namespace: other, Resource: "secrets"}, false},
		{"list Secrets cluster-wide", authorizationv1.ResourceAttributes{Verb: "list", Resource: "secrets"}, false},
		{"impersonate a user", authorizationv1.ResourceAttributes{Verb: "impersonate", Resource: "users", Name: "alice"}, false},
		{"create a TokenReview", authorizationv1.ResourceAttributes{Verb: "create", Group: "authentication.k8s.io", Resource: "tokenreviews"}, false},
		{"read the signer CA", authorizationv1.ResourceAttributes{Verb: "get", Namespace: ns, Resource: "secrets", Name: "kip-signer-ca"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: groups, ResourceAttributes: &tt.attrs}}
			got, err := adminClient(t).AuthorizationV1().SubjectAccessReviews().Create(context.Background(), review, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Status.Allowed != tt.allowed {
				t.Errorf("%s may %s %s in %q: %v, want %v (%s)", user, tt.attrs.Verb, tt.attrs.Resource, tt.attrs.Namespace, got.Status.Allowed, tt.allowed, got.Status.Reason)
			}
		})
	}
}
