package devstack

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// KipUser is the name kip authenticates as upstream in the local stack.
const KipUser = "kip-proxy"

// ProxyClusterRole is everything kip needs upstream: to impersonate, and to
// ask the upstream about tokens and about nested impersonation. Nothing
// else, so a request whose impersonation headers were lost would fail
// rather than run with kip's rights.
func ProxyClusterRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "kip-proxy"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"users", "groups", "serviceaccounts"}, Verbs: []string{"impersonate"}},
			// Every extra key is a subresource of userextras, and RBAC has no
			// "userextras/*"; "*" here covers uids and all extras, and the
			// verb still limits it to impersonation.
			{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"*"}, Verbs: []string{"impersonate"}},
			{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
			{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
		},
	}
}

// grantProxyRights binds ProxyClusterRole to kip, and lets it read the
// cluster's client CA through the built-in
// extension-apiserver-authentication-reader Role.
func grantProxyRights(ctx context.Context, client kubernetes.Interface) error {
	subject := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: KipUser}}
	role := ProxyClusterRole()
	if _, err := client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating ClusterRole %s: %w", role.Name, err)
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "kip-proxy"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   subject,
	}
	if _, err := client.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating ClusterRoleBinding %s: %w", crb.Name, err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "kip-proxy-client-ca-reader", Namespace: "kube-system"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "extension-apiserver-authentication-reader"},
		Subjects:   subject,
	}
	if _, err := client.RbacV1().RoleBindings("kube-system").Create(ctx, rb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating RoleBinding kube-system/%s: %w", rb.Name, err)
	}
	return nil
}

// DemoViewRole is a read-only ClusterRole for `kip dev`'s walkthrough. The
// built-in "view" role is empty here: without kube-controller-manager
// nothing aggregates rules into it.
const DemoViewRole = "kip-demo-view"

// CreateDemoViewRole creates DemoViewRole on the local cluster.
func (s *Stack) CreateDemoViewRole(ctx context.Context) error {
	client, err := kubernetes.NewForConfig(s.Cluster.AdminConfig)
	if err != nil {
		return err
	}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: DemoViewRole},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{"", "apps"},
			Resources: []string{"pods", "pods/log", "services", "configmaps", "deployments", "replicasets", "events"},
			Verbs:     []string{"get", "list", "watch"},
		}},
	}
	if _, err := client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating ClusterRole %s: %w", DemoViewRole, err)
	}
	return nil
}
