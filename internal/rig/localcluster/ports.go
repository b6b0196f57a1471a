package localcluster

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/gofrs/flock"
)

// The ports FreePorts hands out lie below Linux's ephemeral range
// (32768–60999) and every other system's: a port the kernel chose for us
// could be handed to any process's next outbound connection before the
// program we chose it for binds it, and the tests make thousands of those.
const (
	firstPort = 20000
	lastPort  = 32000
)

// FreePorts returns n distinct loopback ports that were free a moment ago
// and that no FreePorts caller on this machine will hand out again while
// this process lives.
//
// A port is chosen before the program it is for binds it, and some are
// bound only now and then (a sign-in callback listens for one login at a
// time), so being free is not enough: test packages run side by side, and
// a port one of them holds unbound could be chosen by another for an API
// server. Each port handed out is therefore claimed with a lock file that
// the process holds until it exits, however it exits.
func FreePorts(n int) ([]int, error) {
	return freePortsIn(n, firstPort, lastPort)
}

// freePortsIn is FreePorts over the ports [first, last).
func freePortsIn(n, first, last int) ([]int, error) {
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries == 1000 {
			return nil, fmt.Errorf("finding a free port: none of 1000 tries between %d and %d was free and unclaimed", first, last)
		}
		port := first + rand.IntN(last-first)
		claimed, err := claim(port)
		if err != nil {
			return nil, err
		}
		if !claimed {
			continue // handed out already, by this process or another user's
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			release(port) // bound by a program that did not ask us
			continue
		}
		_ = l.Close()
		ports = append(ports, port)
	}
	return ports, nil
}

// claims are the port locks this process holds. They must stay reachable:
// a lock whose file is collected and closed is released.
var claims = struct {
	sync.Mutex
	held map[int]*flock.Flock
}{held: map[int]*flock.Flock{}}

// claimDir holds one lock file per port; the files stay, the locks end
// with their processes. It is one folder for the whole machine, whatever
// a process's TMPDIR: tests give `kip dev` and their children temporary
// folders of their own, and their claims must still meet. Like /tmp it is
// open to every user and sticky, so each user's lock files are their own.
const claimDir = "/tmp/kip-rig-ports"

// claim takes port for this process unless some process holds it already.
func claim(port int) (bool, error) {
	claims.Lock()
	defer claims.Unlock()
	if claims.held[port] != nil {
		return false, nil
	}
	if err := makeClaimDir(); err != nil {
		return false, fmt.Errorf("claiming test ports in %s: %w", claimDir, err)
	}
	lock := flock.New(filepath.Join(claimDir, strconv.Itoa(port)+".lock"), flock.SetPermissions(0o600))
	ok, err := lock.TryLock()
	if errors.Is(err, fs.ErrPermission) {
		return false, nil // another user's lock file: theirs, held or not
	}
	if err != nil {
		return false, fmt.Errorf("claiming test port %d: %w", port, err)
	}
	if ok {
		claims.held[port] = lock
	}
	return ok, nil
}

// makeClaimDir creates claimDir open to all, as /tmp is, when it is
// missing.
func makeClaimDir() error {
	if _, err := os.Stat(claimDir); err == nil {
		return nil
	}
	if err := os.Mkdir(claimDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	} else if err == nil {
		return os.Chmod(claimDir, 0o777|os.ModeSticky)
	}
	return nil
}

// release gives back a port this process claimed but will not use.
func release(port int) {
	claims.Lock()
	defer claims.Unlock()
	if lock := claims.held[port]; lock != nil {
		_ = lock.Unlock()
		delete(claims.held, port)
	}
}
