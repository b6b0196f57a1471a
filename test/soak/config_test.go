package soak

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// config is what the soak is asked to do, from the environment.
type config struct {
	// duration is how long traffic runs.
	duration time.Duration
	// restartEvery is the time between upstream restarts; zero restarts
	// nothing.
	restartEvery time.Duration
	// out receives the report.
	out string
}

const (
	defaultDuration     = time.Hour
	defaultRestartEvery = 10 * time.Minute
	// sampleEvery is how often kip's memory and goroutines are read.
	sampleEvery = 10 * time.Second
)

// loadConfig reads KIP_SOAK_DURATION, KIP_SOAK_RESTART_EVERY and
// KIP_SOAK_OUT through getenv; an unset variable keeps its default, and the
// report goes under repoRoot unless KIP_SOAK_OUT says otherwise.
func loadConfig(getenv func(string) string, repoRoot string, now time.Time) (config, error) {
	c := config{duration: defaultDuration, restartEvery: defaultRestartEvery}
	var err error
	if c.duration, err = durationVar(getenv, "KIP_SOAK_DURATION", defaultDuration); err != nil {
		return config{}, err
	}
	if c.duration < time.Minute {
		return config{}, fmt.Errorf("KIP_SOAK_DURATION must be at least 1m, not %s", c.duration)
	}
	if c.restartEvery, err = durationVar(getenv, "KIP_SOAK_RESTART_EVERY", defaultRestartEvery); err != nil {
		return config{}, err
	}
	// Faster than this, kube-apiserver would spend most of the soak
	// starting up, and the steady state between restarts would be gone.
	if c.restartEvery != 0 && c.restartEvery < 30*time.Second {
		return config{}, fmt.Errorf("KIP_SOAK_RESTART_EVERY must be 0 (no restarts) or at least 30s, not %s", c.restartEvery)
	}
	c.out = getenv("KIP_SOAK_OUT")
	if c.out == "" {
		c.out = filepath.Join(repoRoot, "bench", "results", now.Format("2006-01-02"), "soak")
	}
	return c, nil
}

func durationVar(getenv func(string) string, name string, def time.Duration) (time.Duration, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q is not a duration such as 1h or 90s: %w", name, v, err)
	}
	if d < 0 {
		return 0, fmt.Errorf("%s must not be negative, not %s", name, d)
	}
	return d, nil
}

func TestLoadConfig(t *testing.T) {
	now := time.Date(2026, 11, 29, 23, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    config
		wantErr string
	}{
		{name: "defaults", env: nil,
			want: config{duration: time.Hour, restartEvery: 10 * time.Minute, out: "/repo/bench/results/2026-11-29/soak"}},
		{name: "short run", env: map[string]string{"KIP_SOAK_DURATION": "4m", "KIP_SOAK_RESTART_EVERY": "90s", "KIP_SOAK_OUT": "/tmp/x"},
			want: config{duration: 4 * time.Minute, restartEvery: 90 * time.Second, out: "/tmp/x"}},
		{name: "no restarts", env: map[string]string{"KIP_SOAK_RESTART_EVERY": "0"},
			want: config{duration: time.Hour, out: "/repo/bench/results/2026-11-29/soak"}},
		{name: "spaces", env: map[string]string{"KIP_SOAK_DURATION": " 2h "},
			want: config{duration: 2 * time.Hour, restartEvery: 10 * time.Minute, out: "/repo/bench/results/2026-11-29/soak"}},
		{name: "a number without unit", env: map[string]string{"KIP_SOAK_DURATION": "60"}, wantErr: `KIP_SOAK_DURATION="60" is not a duration`},
		{name: "garbage", env: map[string]string{"KIP_SOAK_RESTART_EVERY": "often"}, wantErr: `KIP_SOAK_RESTART_EVERY="often" is not a duration`},
		{name: "negative", env: map[string]string{"KIP_SOAK_DURATION": "-1h"}, wantErr: "KIP_SOAK_DURATION must not be negative"},
		{name: "too short", env: map[string]string{"KIP_SOAK_DURATION": "10s"}, wantErr: "KIP_SOAK_DURATION must be at least 1m"},
		{name: "restart storm", env: map[string]string{"KIP_SOAK_RESTART_EVERY": "1s"}, wantErr: "KIP_SOAK_RESTART_EVERY must be 0 (no restarts) or at least 30s"},
		{name: "overflow", env: map[string]string{"KIP_SOAK_DURATION": "999999999h"}, wantErr: "is not a duration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := loadConfig(func(k string) string { return tc.env[k] }, "/repo", now)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
