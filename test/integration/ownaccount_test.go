package integration

import (
	"context"
	"reflect"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kip-proxy/kip/internal/rig/devstack"
	"github.com/kip-proxy/kip/internal/rig/harness"
)

// TestOwnAccountAloneCanDoNothing is rule 7's failing half. The rig binds
// kip's upstream user to deploy/rbac.yaml's ClusterRole and to nothing
// else but the client-CA reader Role. A request made straight to
// kube-apiserver with kip's own credentials and no impersonation header,
// as a request that lost its headers would arrive, gets 403 for every
// ordinary read and write; with Impersonate-User for someone allowed, the
// same request is served.
func TestOwnAccountAloneCanDoNothing(t *testing.T) {
	ns := createNamespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	checkKipBindings(t, ctx)

	own, err := clientcmd.BuildConfigFromFlags("", stack.UpstreamKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kip := kubernetes.NewForConfigOrDie(own)
	who, err := kip.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil || who.Status.UserInfo.Username != devstack.KipUser {
		t.Fatalf("kip's credentials are %+v, %v; want %s", who, err, devstack.KipUser)
	}

	for _, tt := range []struct {
		name string
		do   func(kubernetes.Interface) error
	}{
		{"list secrets in a namespace", func(c kubernetes.Interface) error {
			_, err := c.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"list secrets in every namespace", func(c kubernetes.Interface) error {
			_, err := c.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
			return err
		}},
		{"list configmaps", func(c kubernetes.Interface) error {
			_, err := c.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"list pods", func(c kubernetes.Interface) error {
			_, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"get the default ServiceAccount", func(c kubernetes.Interface) error {
			_, err := c.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
			return err
		}},
		{"list ClusterRoleBindings", func(c kubernetes.Interface) error {
			_, err := c.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
			return err
		}},
		{"create a ClusterRoleBinding to cluster-admin", func(c kubernetes.Interface) error {
			_, err := c.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: harness.UniqueName("escalate")},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
				Subjects:   []rbacv1.Subject{userSubject(devstack.KipUser)},
			}, metav1.CreateOptions{})
			return err
		}},
		{"request a token for a ServiceAccount", func(c kubernetes.Interface) error {
			_, err := c.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "default", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
			return err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(kip); !apierrors.IsForbidden(err) {
				t.Errorf("as kip without impersonation: %v, want 403 Forbidden", err)
			}
		})
	}

	// The control: the same credentials impersonating a user who may read
	// configmaps are served, so the 403s above come from the missing
	// impersonation, not from a broken client.
	reader := harness.UniqueName("reader")
	grant(t, ns, userSubject(reader), rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"list"}})
	asReader := rest.CopyConfig(own)
	asReader.Impersonate = rest.ImpersonationConfig{UserName: reader}
	harness.Eventually(t, 30*time.Second, func() error {
		_, err := kubernetes.NewForConfigOrDie(asReader).CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
		return err
	})
}

// checkKipBindings checks that the rig gives kip's upstream user exactly
// what deploy/rbac.yaml gives kip: its ClusterRole's rules, bound once,
// and the client-CA reader Role in kube-system.
func checkKipBindings(t *testing.T, ctx context.Context) {
	t.Helper()
	admin := adminClient(t)
	live, err := admin.RbacV1().ClusterRoles().Get(ctx, "kip-proxy", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if deployed := deployedClusterRole(t); !reflect.DeepEqual(live.Rules, deployed.Rules) {
		t.Fatalf("the rig's ClusterRole kip-proxy has\n%+v\ndeploy/rbac.yaml has\n%+v", live.Rules, deployed.Rules)
	}
	var bound []string
	crbs, err := admin.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range crbs.Items {
		if namesKip(b.Subjects) {
			bound = append(bound, "ClusterRole/"+b.RoleRef.Name)
		}
	}
	rbs, err := admin.RbacV1().RoleBindings("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range rbs.Items {
		if namesKip(b.Subjects) {
			bound = append(bound, b.Namespace+"/"+b.RoleRef.Kind+"/"+b.RoleRef.Name)
		}
	}
	want := []string{"ClusterRole/kip-proxy", "kube-system/Role/extension-apiserver-authentication-reader"}
	if !reflect.DeepEqual(bound, want) {
		t.Fatalf("kip's upstream user is bound to %q, want exactly %q", bound, want)
	}
}

func namesKip(subjects []rbacv1.Subject) bool {
	for _, s := range subjects {
		if s.Kind == rbacv1.UserKind && s.Name == devstack.KipUser {
			return true
		}
	}
	return false
}

// deployedClusterRole reads the ClusterRole an operator applies from
// deploy/rbac.yaml.
func deployedClusterRole(t *testing.T) *rbacv1.ClusterRole {
	t.Helper()
	role, err := harness.DeployedClusterRole("kip-proxy")
	if err != nil {
		t.Fatal(err)
	}
	return role
}
