package localcluster

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/gofrs/flock"
)

// TestFreePortsAreClaimedMachineWide: a port FreePorts handed out is not
// handed out again, by this process or, through its lock file, by
// another; a port another process claimed is skipped until that process
// lets it go.
func TestFreePortsAreClaimedMachineWide(t *testing.T) {
	ports, err := FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ports {
		if got, err := freePortsIn(1, p, p+1); err == nil {
			t.Errorf("port %d was handed out twice (%v)", p, got)
		}
		if ok, err := otherProcessLock(p).TryLock(); err != nil || ok {
			t.Errorf("port %d handed out, but another process could claim it (%v, %v)", p, ok, err)
		}
	}

	// Another process's claim: a lock on a separate open file, which
	// flock treats as another owner even within this process.
	port := unclaimedPort(t)
	other := otherProcessLock(port)
	if ok, err := other.TryLock(); err != nil || !ok {
		t.Fatalf("claiming port %d as another process: %v %v", port, ok, err)
	}
	if got, err := freePortsIn(1, port, port+1); err == nil {
		t.Fatalf("port %d, claimed by another process, was handed out (%v)", port, got)
	}
	if err := other.Unlock(); err != nil {
		t.Fatal(err)
	}
	if got, err := freePortsIn(1, port, port+1); err != nil || got[0] != port {
		t.Fatalf("port %d, given back by the other process: %v %v", port, got, err)
	}
}

func otherProcessLock(port int) *flock.Flock {
	return flock.New(filepath.Join(claimDir, strconv.Itoa(port)+".lock"))
}

// unclaimedPort finds a port below FreePorts' range that nobody claims.
func unclaimedPort(t *testing.T) int {
	t.Helper()
	for port := firstPort - 1000; port < firstPort; port++ {
		lock := otherProcessLock(port)
		if ok, err := lock.TryLock(); err == nil && ok {
			_ = lock.Unlock()
			return port
		}
	}
	t.Fatal("every port below FreePorts' range is claimed")
	return 0
}
