package integration

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/kip-proxy/kip/internal/rig/devstack"
	"github.com/kip-proxy/kip/internal/rig/harness"
)

// stack is shared by every test in the package: starting a control plane
// takes seconds, a test takes milliseconds.
var stack *devstack.Stack

// auditLogPath is the upstream's audit log, which shows what kube-apiserver
// itself saw of each request: user, impersonated user, source IPs.
var auditLogPath string

// kipAuditLogPath is kip's own audit log.
var kipAuditLogPath string

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, "integration", setUp))
}

func setUp(ctx context.Context, dir string) (harness.Shared, error) {
	policy, err := harness.WriteAuditPolicy(dir)
	if err != nil {
		return harness.Shared{}, err
	}
	auditLogPath = filepath.Join(dir, "audit.log")
	kipAuditLogPath = filepath.Join(dir, "kip-audit.log")
	stack, err = devstack.Start(ctx, devstack.Options{
		Log:                os.Stderr,
		KeepDir:            harness.KeepDir(),
		ExtraAPIServerArgs: []string{"--audit-policy-file=" + policy, "--audit-log-path=" + auditLogPath},
		// kube-apiserver would believe a leaked X-Remote-User from kip.
		TrustKipAsFrontProxy: true,
		ServeArgs:            []string{"--audit-policy-file=" + policy, "--audit-log-path=" + kipAuditLogPath},
	})
	if err != nil {
		return harness.Shared{}, err
	}
	return harness.Shared{
		Stop: func() error {
			stopTestNodes()
			return stack.Stop()
		},
		Logs: []string{stack.Cluster.Dir},
	}, nil
}
