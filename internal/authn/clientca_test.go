package authn

import (
	"context"
	"testing"

	"k8s.io/apiserver/pkg/server/dynamiccertificates"
)

// runnableCA records whether its controller was run.
type runnableCA struct {
	dynamiccertificates.CAContentProvider
	ranOnce bool
}

func (r *runnableCA) RunOnce(context.Context) error { r.ranOnce = true; return nil }
func (r *runnableCA) Run(context.Context, int)      {}

// TestUnionOfRunsItsParts: the generic server loads the client CAs by
// running the controller of the union it is given; a union that did not
// pass that on would leave the cluster's client CA unloaded and every
// certificate it signed refused. Nested in another union, as kip serve
// nests it with the signer's CA, it must still be run.
func TestUnionOfRunsItsParts(t *testing.T) {
	part := &runnableCA{}
	outer := dynamiccertificates.NewUnionCAContentProvider(UnionOf(part))
	runner, ok := outer.(dynamiccertificates.ControllerRunner)
	if !ok {
		t.Fatal("the outer union runs no controllers")
	}
	if err := runner.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !part.ranOnce {
		t.Fatal("a part of UnionOf was never loaded")
	}
}
