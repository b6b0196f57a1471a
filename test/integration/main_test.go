package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kip-proxy/kip/internal/rig/devstack"
)

// stack is shared by every test in the package: starting a control plane
// takes seconds, a test takes milliseconds.
var stack *devstack.Stack

// auditLogPath is the upstream's audit log, which shows what kube-apiserver
// itself saw of each request: user, impersonated user, source IPs.
var auditLogPath string

// kipAuditLogPath is kip's own audit log.
var kipAuditLogPath string

// auditPolicy records every request's metadata.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: Metadata
`

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	auditDir, err := os.MkdirTemp("", "kip-audit-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	keep := os.Getenv("KIP_KEEP_TEST_DIR") != ""
	if !keep {
		defer func() { _ = os.RemoveAll(auditDir) }()
	}
	policy := filepath.Join(auditDir, "policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	auditLogPath = filepath.Join(auditDir, "audit.log")
	kipAuditLogPath = filepath.Join(auditDir, "kip-audit.log")
	stack, err = devstack.Start(ctx, devstack.Options{
		Log:                os.Stderr,
		KeepDir:            keep,
		ExtraAPIServerArgs: []string{"--audit-policy-file=" + policy, "--audit-log-path=" + auditLogPath},
		// kube-apiserver would believe a leaked X-Remote-User from kip.
		TrustKipAsFrontProxy: true,
		ServeArgs:            []string{"--audit-policy-file=" + policy, "--audit-log-path=" + kipAuditLogPath},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the test stack: %v\n", err)
		return 1
	}
	code := m.Run()
	stopTestNodes()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "control plane logs are in %s (set KIP_KEEP_TEST_DIR=1 to keep them)\n", stack.Cluster.Dir)
	}
	if err := stack.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stopping the test stack: %v\n", err)
	}
	return code
}
