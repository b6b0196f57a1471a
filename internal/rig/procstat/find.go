package procstat

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// FindChild returns the pid of a child of parent whose command name is
// comm. The local cluster starts kube-apiserver as a child of the
// benchmark, without telling its pid; this finds it.
func FindChild(parent int, comm string) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // it exited while we looked
		}
		if name, ppid, ok := nameAndParent(stat); ok && name == comm && ppid == parent {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no child process %q of pid %d", comm, parent)
}

// nameAndParent reads fields 2 (comm, in parentheses) and 4 (ppid).
func nameAndParent(stat []byte) (string, int, bool) {
	open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if open < 0 || end < open {
		return "", 0, false
	}
	fields := bytes.Fields(stat[end+1:])
	if len(fields) < 2 {
		return "", 0, false
	}
	ppid, err := strconv.Atoi(string(fields[1]))
	return string(stat[open+1 : end]), ppid, err == nil
}
