package rig

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

const (
	// User is whom the benchmark logs in as through the proxies.
	User = "kip-bench"
	// Namespace holds the small ConfigMap that the GET workloads read.
	Namespace = "bench"
	// SmallConfigMap is about 500 bytes as JSON, a typical small object.
	SmallConfigMap = "small"
	// SmallPath is the GET of SmallConfigMap.
	SmallPath = "/api/v1/namespaces/" + Namespace + "/configmaps/" + SmallConfigMap
)

// readerRole lets User read ConfigMaps everywhere, and nothing else. The
// built-in view role is empty here: no controller aggregates into it.
func readerRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "kip-bench-reader"},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch"},
		}},
	}
}

func createFixtures(ctx context.Context, admin kubernetes.Interface) error {
	role := readerRole()
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: User}},
	}
	small := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: SmallConfigMap, Namespace: Namespace, Labels: map[string]string{"app": "kip-bench"}},
		Data:       map[string]string{"greeting": strings.Repeat("hello kip ", 25)},
	}
	steps := []func() error{
		func() error {
			_, err := admin.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{})
			return err
		},
		func() error { return CreateNamespace(ctx, admin, Namespace) },
		func() error {
			_, err := admin.CoreV1().ConfigMaps(Namespace).Create(ctx, small, metav1.CreateOptions{})
			return err
		},
	}
	for _, step := range steps {
		if err := step(); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating the benchmark fixtures: %w", err)
		}
	}
	return nil
}

// CreateNamespace creates namespace name unless it exists.
func CreateNamespace(ctx context.Context, admin kubernetes.Interface, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := admin.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return nil
}
