package main

import (
	"io"
	"slices"
	"testing"
)

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		check   func(*testing.T, config)
		wantErr bool
	}{
		{name: "defaults", check: func(t *testing.T, c config) {
			if c.sizes != defaultSizes() || len(c.workloads) != len(allWorkloads) {
				t.Errorf("got %+v", c)
			}
		}},
		{name: "smoke keeps explicit sizes", args: []string{"--watchers=7", "--smoke"}, check: func(t *testing.T, c config) {
			want := smokeSizes()
			want.Watchers = 7
			if c.sizes != want {
				t.Errorf("sizes %+v, want %+v", c.sizes, want)
			}
		}},
		{name: "workloads", args: []string{"--workloads=watch, small-get"}, check: func(t *testing.T, c config) {
			if len(c.workloads) != 2 || c.workloads[0] != wWatch {
				t.Errorf("workloads %q", c.workloads)
			}
		}},
		{name: "targets", args: []string{"--target=a=https://127.0.0.1:1", "--target=b=http://127.0.0.1:2,pid=3"}, check: func(t *testing.T, c config) {
			if len(c.extras) != 2 || c.extras[1].PID != 3 {
				t.Errorf("extras %+v", c.extras)
			}
		}},
		{name: "kip flags and environment", args: []string{"--kip-flag=--v=2", "--kip-env=GOGC=200"}, check: func(t *testing.T, c config) {
			if len(c.kipFlags) != 1 || c.kipFlags[0] != "--v=2" || !slices.Equal(c.kipEnv, []string{"GOMAXPROCS=1", "GOGC=200"}) {
				t.Errorf("kip flags %q, env %q", c.kipFlags, c.kipEnv)
			}
		}},
		{name: "kip runs with the chart's GOMAXPROCS unless told otherwise", args: []string{"--kip-env=GOMAXPROCS=2"}, check: func(t *testing.T, c config) {
			if !slices.Equal(c.kipEnv, []string{"GOMAXPROCS=2"}) {
				t.Errorf("kip env %q, want only the GOMAXPROCS given", c.kipEnv)
			}
		}},
		{name: "kip environment without a value", args: []string{"--kip-env=GOGC"}, wantErr: true},
		{name: "unknown workload", args: []string{"--workloads=fast"}, wantErr: true},
		{name: "too many watchers", args: []string{"--watchers=10001"}, wantErr: true},
		{name: "no requests", args: []string{"--get-requests=0"}, wantErr: true},
		{name: "no exchanges", args: []string{"--exchange-requests=0"}, wantErr: true},
		{name: "exchanges", args: []string{"--smoke", "--exchange-requests=7"}, check: func(t *testing.T, c config) {
			if c.sizes.ExchangeRequests != 7 || c.sizes.GetRequests != smokeSizes().GetRequests {
				t.Errorf("sizes %+v", c.sizes)
			}
		}},
		{name: "no idle sessions", args: []string{"--recording-sessions=0"}, wantErr: true},
		{name: "no recorded bytes", args: []string{"--recording-bytes=0"}, wantErr: true},
		{name: "recording sizes", args: []string{"--smoke", "--recording-sessions=3"}, check: func(t *testing.T, c config) {
			if c.sizes.RecordingSessions != 3 || c.sizes.RecordingBytes != smokeSizes().RecordingBytes {
				t.Errorf("sizes %+v", c.sizes)
			}
		}},
		{name: "bad target", args: []string{"--target=kip=https://127.0.0.1:1"}, wantErr: true},
		{name: "stray argument", args: []string{"now"}, wantErr: true},
		{name: "report only needs a folder", args: []string{"--report-only"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(tc.args, io.Discard)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}
