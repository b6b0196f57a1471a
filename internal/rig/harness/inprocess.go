package harness

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/kip-proxy/kip/internal/options"
	"github.com/kip-proxy/kip/internal/rig/childproc"
	"github.com/kip-proxy/kip/internal/rig/devstack"
	"github.com/kip-proxy/kip/internal/rig/localcluster"
	"github.com/kip-proxy/kip/internal/server"
)

// ParseServe parses args as `kip serve` does, or fails the test.
func ParseServe(t testing.TB, args []string) *options.Serve {
	t.Helper()
	o, err := devstack.ParseServe(args)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// StartInProcess runs kip in this process, through the same flag parsing
// as `kip serve`, with the stack's flags plus extra, and returns its URL
// once it is ready. In this process a test can reach kip's internals (its
// klog output, its globals) that a child process would hide.
func StartInProcess(t testing.TB, stack *devstack.Stack, extra ...string) string {
	t.Helper()
	ports, err := localcluster.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	o := ParseServe(t, append(stack.ServeArgs(stack.UpstreamKubeconfig, ports[0], ports[1]), extra...))
	return ServeInProcess(t, o, ports[0], ports[1])
}

// ServeInProcess runs the kip o describes, listening on port with probes
// on probePort, until the test ends, and returns its URL once its /readyz
// says 200. The test fails if kip does not stop cleanly.
func ServeInProcess(t testing.TB, o *options.Serve, port, probePort int) string {
	t.Helper()
	cfg, err := o.Config()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-stopped:
			if err != nil {
				t.Errorf("kip stopped with %v", err)
			}
		case <-time.After(70 * time.Second):
			t.Error("kip did not stop within 70s")
		}
	})
	probe := "http://127.0.0.1:" + strconv.Itoa(probePort) + "/readyz"
	waitCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var last error
	for {
		if last = childproc.GetOK(waitCtx, http.DefaultClient, probe); last == nil {
			return "https://127.0.0.1:" + strconv.Itoa(port)
		}
		select {
		case err := <-stopped:
			stopped <- err // for the cleanup, which waits for it
			t.Fatalf("kip stopped before it was ready: %v", err)
		case <-waitCtx.Done():
			t.Fatalf("kip in this process never became ready: %v", last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
