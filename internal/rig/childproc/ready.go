package childproc

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// WaitReady calls probe until it succeeds, the process exits, timeout
// passes or ctx ends. Failures carry the tail of the process's log, where
// the reason usually is.
func (p *Process) WaitReady(ctx context.Context, timeout time.Duration, probe func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		// A short per-probe timeout keeps one hung connection from eating
		// the whole budget.
		probeCtx, cancelProbe := context.WithTimeout(ctx, 2*time.Second)
		err := probe(probeCtx)
		cancelProbe()
		if err == nil {
			return nil
		}
		select {
		case <-p.Exited():
			return fmt.Errorf("%s exited before becoming ready (%v); %s", p.Name, p.Err(), p.LogTail())
		case <-ctx.Done():
			return fmt.Errorf("%s not ready (last probe: %v): %w; %s", p.Name, err, ctx.Err(), p.LogTail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// GetOK succeeds when url answers 200 OK through client: the usual
// readiness probe.
func GetOK(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return nil
}
