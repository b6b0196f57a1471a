package harness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"

	"github.com/kip-proxy/kip/internal/rig/binaries"
)

// DeployedClusterRole is the ClusterRole called name in deploy/rbac.yaml,
// what an operator applies, so that tests run kip with exactly those
// rights.
func DeployedClusterRole(name string) (*rbacv1.ClusterRole, error) {
	var role rbacv1.ClusterRole
	return &role, deployedObject("ClusterRole", name, &role)
}

// DeployedRole is the Role called name in deploy/rbac.yaml.
func DeployedRole(name string) (*rbacv1.Role, error) {
	var role rbacv1.Role
	return &role, deployedObject("Role", name, &role)
}

// deployedObject decodes the object of kind called name into obj.
func deployedObject(kind, name string, obj any) error {
	root, err := binaries.FindRepoRoot()
	if err != nil {
		return err
	}
	data, err := os.ReadFile(filepath.Join(root, "deploy", "rbac.yaml"))
	if err != nil {
		return err
	}
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var doc json.RawMessage
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("deploy/rbac.yaml has no %s %s", kind, name)
		}
		if err != nil {
			return fmt.Errorf("reading deploy/rbac.yaml: %w", err)
		}
		var head struct {
			metav1.TypeMeta   `json:",inline"`
			metav1.ObjectMeta `json:"metadata"`
		}
		if err := json.Unmarshal(doc, &head); err != nil {
			return fmt.Errorf("reading deploy/rbac.yaml: %w", err)
		}
		if head.Kind == kind && head.Name == name {
			return json.Unmarshal(doc, obj)
		}
	}
}
