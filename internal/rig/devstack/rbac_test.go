package devstack_test

import (
	"reflect"
	"testing"

	"github.com/kip-proxy/kip/internal/rig/devstack"
	"github.com/kip-proxy/kip/internal/rig/harness"
)

// TestDeployedRoleMatchesTestedRole keeps deploy/rbac.yaml, which operators
// apply, equal to the role the integration tests run kip with.
func TestDeployedRoleMatchesTestedRole(t *testing.T) {
	want := devstack.ProxyClusterRole()
	role, err := harness.DeployedClusterRole(want.Name)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(role.Rules, want.Rules) {
		t.Fatalf("deploy/rbac.yaml has\n%+v\nthe tested role is\n%+v", role.Rules, want.Rules)
	}
}
