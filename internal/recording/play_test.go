package recording

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPause(t *testing.T) {
	tests := []struct {
		name       string
		prev, next float64
		maxIdle    time.Duration
		speed      float64
		want       time.Duration
	}{
		{name: "real time", prev: 1, next: 1.5, speed: 1, want: 500 * time.Millisecond},
		{name: "twice as fast", prev: 1, next: 2, speed: 2, want: 500 * time.Millisecond},
		{name: "slower", prev: 0, next: 1, speed: 0.5, want: 2 * time.Second},
		{name: "idle capped", prev: 0, next: 3600, maxIdle: 2 * time.Second, speed: 1, want: 2 * time.Second},
		{name: "cap before speed", prev: 0, next: 3600, maxIdle: 2 * time.Second, speed: 4, want: 500 * time.Millisecond},
		{name: "under the cap", prev: 0, next: 1, maxIdle: 2 * time.Second, speed: 1, want: time.Second},
		{name: "back in time", prev: 5, next: 4, speed: 1, want: 0},
		{name: "huge gap, tiny speed, no overflow", prev: 0, next: 1e300, speed: 1e-300, want: time.Duration(1<<62 - 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Pause(tt.prev, tt.next, tt.maxIdle, tt.speed)
			if tt.name == "huge gap, tiny speed, no overflow" {
				if got <= 0 {
					t.Errorf("Pause = %v, want a long positive pause", got)
				}
				return
			}
			if got != tt.want {
				t.Errorf("Pause = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPlay(t *testing.T) {
	tty := record(t, testHeader(true),
		at(0, StreamStdin, "ls\r"), at(500, StreamStdout, "a b\r\n"), at(1500, StreamStderr, "warn\r\n"),
		at(600_000, StreamStdout, "later\r\n"), at(600_001, StreamError, `{"status":"Success"}`))
	plain := record(t, testHeader(false), at(1000, StreamStdout, "out\n"), at(2000, StreamStderr, "err\n"))

	tests := []struct {
		name             string
		data             []byte
		opts             PlayOptions
		wantOut, wantErr string
		wantPauses       []time.Duration
		wantFail         string
	}{
		{name: "a TTY session as its terminal showed it", data: tty,
			wantOut: "a b\r\nwarn\r\nlater\r\n", wantPauses: []time.Duration{500 * time.Millisecond, time.Second, 598500 * time.Millisecond}},
		{name: "idle capped, faster", data: tty, opts: PlayOptions{Speed: 2, MaxIdle: 2 * time.Second},
			wantOut: "a b\r\nwarn\r\nlater\r\n", wantPauses: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second}},
		{name: "stderr apart without a TTY", data: plain,
			wantOut: "out\n", wantErr: "err\n", wantPauses: []time.Duration{time.Second, time.Second}},
		{name: "a negative speed", data: plain, opts: PlayOptions{Speed: -1}, wantFail: "positive"},
		{name: "not a recording", data: []byte("hello\n"), wantFail: "not a kip session recording"},
		{name: "empty", data: nil, wantFail: "empty"},
		{name: "a garbage line", data: append(bytes.Clone(plain[:bytes.IndexByte(plain, '\n')+1]), "nope\n[1, \"o\", \"x\"]\n"...), wantFail: "not an asciicast event"},
		{name: "an unfinished last line", data: plain[:len(plain)-5], wantOut: "out\n", wantErr: "err\n", wantPauses: []time.Duration{time.Second, time.Second},
			wantFail: "unfinished line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pauses []time.Duration
			tt.opts.Sleep = func(_ context.Context, d time.Duration) error {
				if d > 0 {
					pauses = append(pauses, d)
				}
				return nil
			}
			var out, errOut bytes.Buffer
			err := Play(context.Background(), bytes.NewReader(tt.data), &out, &errOut, tt.opts)
			if tt.wantFail != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantFail) {
					t.Fatalf("Play = %v, want an error saying %q", err, tt.wantFail)
				}
				if tt.wantOut == "" {
					return
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.wantOut || errOut.String() != tt.wantErr {
				t.Errorf("played stdout %q stderr %q, want %q and %q", out.String(), errOut.String(), tt.wantOut, tt.wantErr)
			}
			if !slices.Equal(pauses, tt.wantPauses) {
				t.Errorf("pauses %v, want %v", pauses, tt.wantPauses)
			}
		})
	}
}

func TestPlayStopsWithItsContext(t *testing.T) {
	data := record(t, testHeader(false), at(0, StreamStdout, "now\n"), at(3_600_000, StreamStdout, "in an hour\n"))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var out bytes.Buffer
	began := time.Now()
	err := Play(ctx, bytes.NewReader(data), &out, &out, PlayOptions{})
	if !errors.Is(err, context.DeadlineExceeded) || out.String() != "now\n" {
		t.Errorf("Play = %v after writing %q, want the deadline after %q", err, out.String(), "now\n")
	}
	if time.Since(began) > 10*time.Second {
		t.Errorf("Play took %v to stop", time.Since(began))
	}
}
