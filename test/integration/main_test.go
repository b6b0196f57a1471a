package integration

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/kip-proxy/kip/internal/devstack"
)

// stack is shared by every test in the package: starting a control plane
// takes seconds, a test takes milliseconds.
var stack *devstack.Stack

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	var err error
	stack, err = devstack.Start(ctx, devstack.Options{Log: os.Stderr, KeepDir: os.Getenv("KIP_KEEP_TEST_DIR") != ""})
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the test stack: %v\n", err)
		return 1
	}
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "control plane logs are in %s (set KIP_KEEP_TEST_DIR=1 to keep them)\n", stack.Cluster.Dir)
	}
	if err := stack.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stopping the test stack: %v\n", err)
	}
	return code
}
