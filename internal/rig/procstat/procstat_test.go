package procstat

import (
	"os"
	"testing"
	"time"
)

func TestParseCPU(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       time.Duration
		wantErr    bool
	}{
		{name: "plain", stat: "42 (kip) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 1 1 1", want: 3 * time.Second},
		{name: "spaces and parens in comm", stat: "7 (a) b (c) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0", want: 30 * time.Millisecond},
		{name: "no comm", stat: "7 a R", wantErr: true},
		{name: "short", stat: "7 (a) R 1 2", wantErr: true},
		{name: "garbage ticks", stat: "7 (a) R 1 7 7 0 -1 0 0 0 0 0 x 2 0 0", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseCPU([]byte(tc.stat))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseMemory(t *testing.T) {
	status := "Name:\tkip\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t9\n"
	got, err := parseMemory([]byte(status))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Memory{RSS: 10 << 20, HWM: 20 << 20}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if _, err := parseMemory([]byte("Name:\tkthreadd\n")); err == nil {
		t.Error("no VmRSS: want an error, as for a kernel thread")
	}
	for _, bad := range []string{"", "VmRSS:\tlots kB\n", "VmRSS:\t-5 kB\n", "VmRSS:\t99999999999999999999 kB\n", "VmRSS:\t10240 kB\nVmHWM:\t-1 kB\n"} {
		if m, err := parseMemory([]byte(bad)); err == nil {
			t.Errorf("parseMemory(%q) = %+v, want an error", bad, m)
		}
	}
}

func TestSelf(t *testing.T) {
	if _, err := CPU(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	s := StartSampler(os.Getpid(), time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	if peak := s.Stop(); peak <= 0 {
		t.Errorf("peak RSS of this process = %d", peak)
	}
	if got := StartSampler(0, time.Millisecond).Stop(); got != 0 {
		t.Errorf("pid 0 sampled %d", got)
	}
}

func TestNameAndParent(t *testing.T) {
	name, ppid, ok := nameAndParent([]byte("9 (kube-apiserver) S 4 9 9 0"))
	if !ok || name != "kube-apiserver" || ppid != 4 {
		t.Errorf("got %q %d %v", name, ppid, ok)
	}
}
