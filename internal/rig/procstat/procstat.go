package procstat

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
// The kernel fixes it at 100 on every architecture Go supports on Linux.
const clockTicks = 100

// CPU returns the CPU time, user plus system, that pid has used so far.
func CPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseCPU(data)
}

// parseCPU reads utime and stime, fields 14 and 15 of /proc/<pid>/stat.
// The command name in field 2 may hold spaces and parentheses, so fields
// are counted from the last ')'.
func parseCPU(stat []byte) (time.Duration, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, fmt.Errorf("malformed /proc stat line %q", stat)
	}
	fields := strings.Fields(string(stat[end+1:]))
	// fields[0] is field 3 (state), so field n is fields[n-3].
	if len(fields) < 13 {
		return 0, fmt.Errorf("short /proc stat line %q", stat)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parsing /proc stat field %q: %w", f, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// Memory is the resident set of a process, in bytes.
type Memory struct {
	// RSS is resident memory now (VmRSS).
	RSS int64
	// HWM is the highest RSS since the process started (VmHWM).
	HWM int64
}

// ReadMemory returns pid's current and peak resident memory.
func ReadMemory(pid int) (Memory, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	return parseMemory(data)
}

func parseMemory(status []byte) (Memory, error) {
	var m Memory
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var into *int64
		switch name {
		case "VmRSS":
			into = &m.RSS
		case "VmHWM":
			into = &m.HWM
		default:
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err == nil && (kb < 0 || kb > math.MaxInt64>>10) {
			err = errors.New("not a size in kB")
		}
		if err != nil {
			return Memory{}, fmt.Errorf("parsing %s %q: %w", name, value, err)
		}
		*into = kb << 10
	}
	if m.RSS == 0 {
		return Memory{}, fmt.Errorf("no VmRSS in /proc status")
	}
	return m, sc.Err()
}

// RSS returns pid's resident memory now.
func RSS(pid int) (int64, error) {
	m, err := ReadMemory(pid)
	return m.RSS, err
}
