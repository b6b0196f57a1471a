package clusters

import (
	"bytes"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// AccessExtension names the extension of a cluster's kubeconfig entry that
// says who may reach the cluster through kip. It sits on the cluster of
// the current context, beside the server it describes:
//
//	clusters:
//	- name: prod
//	  cluster:
//	    server: https://prod.example.com
//	    extensions:
//	    - name: kip.dev/access
//	      extension:
//	        groups: [prod-admins]
//	        expression: "'sre' in user.groups"
const AccessExtension = "kip.dev/access"

// access is the extension's content. A user in one of Groups, or one for
// whom Expression is true, may reach the cluster.
type access struct {
	Groups     []string `json:"groups,omitempty"`
	Expression string   `json:"expression,omitempty"`
}

// policyOf reads the access extension of the kubeconfig's current cluster
// and compiles it. Without the extension every authenticated user may
// reach the cluster. An extension kip cannot read exactly (an unknown
// field, such as a misspelt "group", or an expression that does not
// compile) refuses the entry: a policy read loosely would let in users it
// was written to keep out.
func policyOf(kc *clientcmdapi.Config) (*Policy, error) {
	ctx := kc.Contexts[kc.CurrentContext]
	ext, ok := kc.Clusters[ctx.Cluster].Extensions[AccessExtension]
	if !ok {
		return CompilePolicy("", nil)
	}
	raw, ok := ext.(*runtime.Unknown)
	if !ok {
		return nil, fmt.Errorf("the %s extension is a %T, not an object with groups and an expression", AccessExtension, ext)
	}
	var a access
	dec := json.NewDecoder(bytes.NewReader(raw.Raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("the %s extension: %w; it takes groups (a list) and expression (CEL)", AccessExtension, err)
	}
	if a.Groups != nil && len(a.Groups) == 0 && a.Expression == "" {
		return nil, fmt.Errorf("the %s extension allows no group and has no expression, which would let nobody in; remove the cluster instead", AccessExtension)
	}
	return CompilePolicy(a.Expression, a.Groups)
}
