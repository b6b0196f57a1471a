package devstack

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
)

// TestDeployedRoleMatchesTestedRole keeps deploy/rbac.yaml, which operators
// apply, equal to the role the integration tests run kip with.
func TestDeployedRoleMatchesTestedRole(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "deploy", "rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var role rbacv1.ClusterRole
	if err := dec.Decode(&role); err != nil {
		t.Fatal(err)
	}
	want := ProxyClusterRole()
	if role.Name != want.Name || !reflect.DeepEqual(role.Rules, want.Rules) {
		t.Fatalf("deploy/rbac.yaml has\n%+v\nthe tested role is\n%+v", role.Rules, want.Rules)
	}
}
