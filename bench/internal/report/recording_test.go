package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kip-proxy/kip/bench/internal/results"
)

func sampleRecording() *results.Recording {
	x := func(target, kind, protocol string, mbps float64, cpu *float64) results.Transfer {
		return results.Transfer{Target: target, Kind: kind, Protocol: protocol, Bytes: 64 << 20, Seconds: []float64{1, 1, 1}, MBps: mbps, ProxyCPUPerMiB: cpu}
	}
	m := func(target, protocol string, perSession float64) results.SessionMemory {
		s := results.SessionMemory{Target: target, Protocol: protocol, Sessions: 500, Opened: 500, OpenConcurrency: 16,
			RSSBefore: 60 << 20, RSSOpen: 60<<20 + int64(500*perSession), RSSPerSession: perSession, HeapPerSession: perSession / 2}
		if target == "kip-recorded" {
			s.RecordingFiles = 504
		}
		return s
	}
	return &results.Recording{
		Transfers: []results.Transfer{
			x("direct", "exec", "websocket", 100, nil), x("kip", "exec", "websocket", 80, ptr(0.010)), x("kip-recorded", "exec", "websocket", 78, ptr(0.011)),
			x("direct", "exec", "spdy", 120, nil), x("kip", "exec", "spdy", 90, ptr(0.008)), x("kip-recorded", "exec", "spdy", 88, ptr(0.009)),
			x("direct", "port-forward", "spdy", 200, nil), x("kip", "port-forward", "spdy", 150, ptr(0.004)), x("kip-recorded", "port-forward", "spdy", 151, ptr(0.004)),
		},
		Memory: []results.SessionMemory{
			m("kip", "websocket", 100<<10), m("kip-recorded", "websocket", 120<<10),
			m("kip-recorded", "spdy", 130<<10), m("kip", "spdy", 100<<10),
		},
		RecordedFiles: 6, RecordedBytes: 400 << 20, ExecStdoutBytes: 384 << 20,
	}
}

// TestRecordingGoals checks each recording goal met in one case and missed
// in another, and that runs without recording results keep their table.
func TestRecordingGoals(t *testing.T) {
	const (
		execWS = "exec throughput, recording on, WebSocket"
		pfSPDY = "port-forward throughput, recording on, SPDY"
		cpuWS  = "kip CPU per MiB, exec recorded, WebSocket"
		memWS  = "RSS per open recorded exec session, WebSocket"
	)
	for _, tc := range []struct {
		name, goal string
		tweak      func(*results.Recording)
		verdict    string
		got        string
	}{
		{"exec as fast", execWS, func(*results.Recording) {}, "met", "0.97× (78 vs 80 MB/s)"},
		{"exec, round by round", execWS, func(r *results.Recording) {
			r.Transfers[1].Seconds, r.Transfers[2].Seconds = []float64{1, 1, 1}, []float64{1.25, 1, 0.8}
		}, "met", "round by round 0.80–1.25×"},
		{"exec, rounds that failed", execWS, func(r *results.Recording) {
			r.Transfers[2].Seconds, r.Transfers[2].Errors = []float64{1, 1}, 1
		}, "**missed**", "(78 vs 80 MB/s)"},
		{"exec slower", execWS, func(r *results.Recording) { r.Transfers[2].MBps = 70 }, "**missed**", "0.88×"},
		{"exec with errors", execWS, func(r *results.Recording) { r.Transfers[2].Errors = 1 }, "**missed**", "0.97×"},
		{"exec unrecorded failed", execWS, func(r *results.Recording) { r.Transfers[1].MBps = 0 }, "n/a", ""},
		{"port-forward as fast", pfSPDY, func(*results.Recording) {}, "met", "1.01× (151 vs 150 MB/s)"},
		{"CPU within budget", cpuWS, func(*results.Recording) {}, "met", "1.10× (11.00 vs 10.00 ms per MiB)"},
		{"CPU over budget", cpuWS, func(r *results.Recording) { r.Transfers[2].ProxyCPUPerMiB = ptr(0.013) }, "**missed**", "1.30×"},
		{"CPU unmeasured", cpuWS, func(r *results.Recording) { r.Transfers[1].ProxyCPUPerMiB = nil }, "n/a", ""},
		{"memory within budget", memWS, func(*results.Recording) {}, "met", "+20.0 KiB (120.0 vs 100.0 KiB at 500 sessions; heap and stacks +10.0 KiB)"},
		{"memory over budget", memWS, func(r *results.Recording) { r.Memory[1].RSSPerSession = 170 << 10 }, "**missed**", "+70.0 KiB"},
		{"sessions that did not open", memWS, func(r *results.Recording) { r.Memory[1].Opened = 499 }, "**missed**", "at 499 sessions"},
		{"memory at a smaller scale", memWS, func(r *results.Recording) {
			for i := range r.Memory {
				r.Memory[i].Sessions, r.Memory[i].Opened = 10, 10
			}
		}, "met at 10 (goal is at 500)", "at 10 sessions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := sampleRun()
			run.Recording = sampleRecording()
			tc.tweak(run.Recording)
			g, ok := goalNamed(run, tc.goal)
			if !ok {
				t.Fatalf("no goal %q", tc.goal)
			}
			if g.verdict() != tc.verdict || !strings.Contains(g.got, tc.got) {
				t.Errorf("verdict %q, got %q; want %q and a figure containing %q", g.verdict(), g.got, tc.verdict, tc.got)
			}
		})
	}
	if gs := recordingGoals(sampleRun()); len(gs) != 0 {
		t.Errorf("a run without recording results has recording goals: %v", gs)
	}
}

func TestRecordingSection(t *testing.T) {
	dir := t.TempDir()
	run := sampleRun()
	run.Recording = sampleRecording()
	md, err := Write(dir, run)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## 8. Session recording", "| exec | WebSocket | kip-recorded | 78.0 | 0.97× | 0.78× | 11.00 | 1.10× |",
		"| SPDY | kip-recorded | 500 of 500 | 0.00 | 504 |", "1.04 bytes of recording per byte of output", "same run",
		"![throughput with recording on and off](recording-throughput.png)"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, f := range []string{"recording-throughput.png", "recording-memory.png"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
}

// TestRoundRatios pairs rounds only when every round of both succeeded,
// so that the i-th times ran moments apart.
func TestRoundRatios(t *testing.T) {
	x := func(errors int, seconds ...float64) *results.Transfer {
		return &results.Transfer{Seconds: seconds, Errors: errors}
	}
	for _, tc := range []struct {
		name    string
		on, off *results.Transfer
		lo, hi  float64
		ok      bool
	}{
		{"paired", x(0, 2, 1, 4), x(0, 1, 1, 2), 0.5, 1, true},
		{"a failed round", x(1, 2, 1), x(0, 1, 1, 2), 0, 0, false},
		{"one round", x(0, 1), x(0, 1), 0, 0, false},
		{"a zero time", x(0, 0, 1), x(0, 1, 1), 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lo, hi, ok := roundRatios(tc.on, tc.off)
			if lo != tc.lo || hi != tc.hi || ok != tc.ok {
				t.Errorf("roundRatios = %v, %v, %v; want %v, %v, %v", lo, hi, ok, tc.lo, tc.hi, tc.ok)
			}
		})
	}
}
