package clusters

import (
	"errors"
	"fmt"
	"slices"

	"github.com/google/cel-go/cel"
	"k8s.io/apiserver/pkg/authentication/user"
)

// policyCostLimit bounds the work one evaluation may do, so that an
// expression over a user with many groups (which the identity provider
// chooses) cannot stall a request. A check of names and groups costs a
// few units per group; this leaves room for thousands of groups.
const policyCostLimit = 100_000

// Policy decides which users may reach a cluster at all, before anything
// is forwarded to it: a user in one of Groups, or one for whom a CEL
// expression over user (username, uid, groups, extra) is true. A Policy
// with neither allows everyone; the cluster's RBAC decides the rest.
type Policy struct {
	expression string
	program    cel.Program
	groups     []string
}

// CompilePolicy checks expression, which must be a CEL expression of type
// bool, such as 'prod-admins' in user.groups, and returns the policy. An
// expression that does not compile, or is not a bool, is refused here,
// when the cluster is registered, not when a user arrives.
func CompilePolicy(expression string, groups []string) (*Policy, error) {
	p := &Policy{expression: expression, groups: slices.Clone(groups)}
	if expression == "" {
		return p, nil
	}
	env, err := cel.NewEnv(cel.Variable("user", cel.MapType(cel.StringType, cel.DynType)))
	if err != nil {
		return nil, err
	}
	ast, iss := env.Compile(expression)
	if iss.Err() != nil {
		return nil, fmt.Errorf("the access policy %q does not compile: %w", expression, iss.Err())
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, fmt.Errorf("the access policy %q is a %s, not a bool", expression, ast.OutputType())
	}
	if p.program, err = env.Program(ast, cel.CostLimit(policyCostLimit)); err != nil {
		return nil, fmt.Errorf("the access policy %q: %w", expression, err)
	}
	return p, nil
}

// Allows reports whether u may reach the cluster. An evaluation that
// fails (a missing key, the cost limit) refuses: the policy fails closed.
func (p *Policy) Allows(u user.Info) (bool, error) {
	if p.program == nil && len(p.groups) == 0 {
		return true, nil
	}
	for _, g := range u.GetGroups() {
		if slices.Contains(p.groups, g) {
			return true, nil
		}
	}
	if p.program == nil {
		return false, nil
	}
	out, _, err := p.program.Eval(map[string]any{"user": userVar(u)})
	if err != nil {
		return false, fmt.Errorf("evaluating the access policy %q: %w", p.expression, err)
	}
	allowed, ok := out.Value().(bool)
	if !ok {
		return false, errors.New("the access policy did not give a bool")
	}
	return allowed, nil
}

// userVar is u as the expression sees it. Every key is always present,
// so that an expression never fails only because a user has no UID.
func userVar(u user.Info) map[string]any {
	extra := map[string][]string{}
	for k, v := range u.GetExtra() {
		extra[k] = v
	}
	groups := u.GetGroups()
	if groups == nil {
		groups = []string{}
	}
	return map[string]any{"username": u.GetName(), "uid": u.GetUID(), "groups": groups, "extra": extra}
}
