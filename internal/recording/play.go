package recording

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// maxEventLine bounds one line Play reads. The Writer cuts events into
// chunks of textChunk bytes, escaped at most sixfold, so a longer line was
// not written by kip.
const maxEventLine = 1 << 20

// PlayOptions say how fast to replay a recording.
type PlayOptions struct {
	// Speed divides every pause: 2 plays twice as fast. 0 means 1.
	Speed float64
	// MaxIdle caps any one pause, before Speed applies; 0 means no cap.
	MaxIdle time.Duration
	// Sleep waits d or until ctx ends; nil waits on a timer. Tests pass
	// their own.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Play replays the recording r as it happened: each output event written
// to stdout ("o": stdout, and stderr of a TTY session) or stderr ("e") at
// its time, so a TTY session appears as its terminal showed it. Input,
// resizes, kip's notes and the seal are not replayed. It returns when the
// recording ends or ctx does.
func Play(ctx context.Context, r io.Reader, stdout, stderr io.Writer, o PlayOptions) error {
	speed := o.Speed
	if speed == 0 {
		speed = 1
	}
	if speed < 0 || math.IsNaN(speed) || math.IsInf(speed, 0) {
		return fmt.Errorf("the replay speed must be a positive number, not %v", o.Speed)
	}
	sleep := o.Sleep
	if sleep == nil {
		sleep = sleepContext
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), max(maxEventLine, MaxHeaderLine))
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return fmt.Errorf("reading the recording's header: %w", err)
		}
		return fmt.Errorf("%w: it is empty", ErrNotRecording)
	}
	if _, err := parseHeader(sc.Bytes()); err != nil {
		return err
	}
	var last float64
	for sc.Scan() {
		t, code, data, ok := parseLine(sc.Bytes())
		if !ok {
			if !sc.Scan() && sc.Err() == nil {
				return errors.New("the recording ends in an unfinished line: it is still being written, or kip stopped while writing it")
			}
			return errors.New("the recording holds a line that is not an asciicast event; verify it with kip sessions verify")
		}
		var w io.Writer
		switch code {
		case codeOutput:
			w = stdout
		case codeStderr:
			w = stderr
		default:
			continue
		}
		if err := sleep(ctx, Pause(last, t, o.MaxIdle, speed)); err != nil {
			return err
		}
		last = max(last, t)
		if _, err := io.WriteString(w, data); err != nil {
			return fmt.Errorf("writing the replay: %w", err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading the recording: %w", err)
	}
	return nil
}

// Pause is how long to wait between an event at prev seconds and the next
// at next: the gap, capped at maxIdle (when not 0), divided by speed. An
// event that goes back in time is played at once.
func Pause(prev, next float64, maxIdle time.Duration, speed float64) time.Duration {
	gap := next - prev
	if gap <= 0 || math.IsNaN(gap) {
		return 0
	}
	d := time.Duration(math.Min(gap*float64(time.Second), math.MaxInt64/2))
	if maxIdle > 0 && d > maxIdle {
		d = maxIdle
	}
	return time.Duration(math.Min(float64(d)/speed, math.MaxInt64/2))
}

func sleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
