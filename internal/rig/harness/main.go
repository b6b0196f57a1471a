package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// AuditPolicy records every request's metadata: who, as whom, from where,
// and the answer's status, which is what the tests read.
const AuditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: Metadata
`

// KeepDir reports whether KIP_KEEP_TEST_DIR asks to keep the logs and keys
// of a run.
func KeepDir() bool { return os.Getenv("KIP_KEEP_TEST_DIR") != "" }

// WriteAuditPolicy writes AuditPolicy into dir and returns its path, for
// kube-apiserver's and kip's --audit-policy-file.
func WriteAuditPolicy(dir string) (string, error) {
	path := filepath.Join(dir, "audit-policy.yaml")
	return path, os.WriteFile(path, []byte(AuditPolicy), 0o600)
}

// Shared is what a test package's set-up started for all of its tests.
type Shared struct {
	// Stop ends it after the tests.
	Stop func() error
	// Logs are more folders worth reading when a test fails.
	Logs []string
}

// SetUp starts what a package's tests share, with dir for its files. On
// error it still returns a Stop for what it did start.
type SetUp func(ctx context.Context, dir string) (Shared, error)

// Main is a package's TestMain: it makes a directory for the run, sets up
// within 30 minutes, runs the tests, says where the logs are when one
// failed, stops what set-up started and removes the directory (unless
// KIP_KEEP_TEST_DIR is set) and kip's build. It returns the exit code.
func Main(m *testing.M, name string, setUp SetUp) int {
	defer RemoveBuild()
	dir, err := os.MkdirTemp("", "kip-"+name+"-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if !KeepDir() {
		defer func() { _ = os.RemoveAll(dir) }()
	}
	shared := Shared{}
	if setUp != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		shared, err = setUp(ctx, dir)
		cancel()
	}
	code := 1
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the %s test environment: %v\n", name, err)
	} else {
		code = m.Run()
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "logs are in %s (set KIP_KEEP_TEST_DIR=1 to keep them)\n", append([]string{dir}, shared.Logs...))
	}
	if shared.Stop != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping the %s test environment: %v\n", name, err)
		}
	}
	return code
}
