package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"github.com/kip-proxy/kip/bench/internal/results"
	"github.com/kip-proxy/kip/bench/internal/rig"
	"github.com/kip-proxy/kip/internal/rig/binaries"
)

// machine describes this computer from /proc.
func machine() results.Machine {
	m := results.Machine{Cores: runtime.NumCPU(), CPUModel: procField("/proc/cpuinfo", "model name")}
	if kb, err := strconv.Atoi(strings.TrimSuffix(procField("/proc/meminfo", "MemTotal"), " kB")); err == nil {
		m.MemoryGB = (kb + 1<<19) >> 20
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	m.LoadBefore = loadAverage()
	return m
}

// loadAverage is the 1-minute load average, or 0 if unknown.
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(data), " ")
	v, _ := strconv.ParseFloat(first, 64)
	return v
}

// procField returns the value of the first "name: value" line in path.
func procField(path, name string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// versions names what was measured. kube-apiserver is asked; kubectl and
// etcd are the pinned builds the rig runs.
func versions(ctx context.Context, root string, r *rig.Rig) results.Versions {
	v := results.Versions{
		Kip:     gitDescribe(ctx, root),
		Kubectl: binaries.KubeVersion,
		Etcd:    binaries.EtcdVersion,
		Go:      runtime.Version(),
	}
	if info, err := r.Admin.Discovery().ServerVersion(); err == nil {
		v.KubeAPIServer = info.GitVersion
	}
	return v
}

func gitDescribe(ctx context.Context, root string) string {
	cmd := exec.CommandContext(ctx, "git", "describe", "--tags", "--always", "--dirty")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
