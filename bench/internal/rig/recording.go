package rig

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/kip-proxy/kip/bench/internal/load"
)

// RecordedName is the target name of the kip that records sessions.
const RecordedName = "kip-recorded"

// KipPair is two fresh single-cluster kips started alike, with the rig's
// flags, except that Recorded also runs with --recording-dir: what
// recording costs is their difference, measured in the same run.
type KipPair struct {
	// Plain is called "kip", Recorded RecordedName.
	Plain, Recorded *load.Target
	// PlainProbe and RecordedProbe serve each kip's /metrics and
	// /debug/pprof.
	PlainProbe, RecordedProbe string
	// RecordingDir is the recorded kip's --recording-dir, a temporary
	// directory removed by Stop.
	RecordingDir string

	procs group
}

// StartKipPair starts a KipPair. Stop it before the next workload.
func (r *Rig) StartKipPair(ctx context.Context) (_ *KipPair, err error) {
	p := &KipPair{}
	defer func() {
		if err != nil {
			err = errors.Join(err, p.Stop())
		}
	}()
	// A temporary directory, not the results' raw folder: a run records
	// gigabytes that nobody reads afterwards.
	if p.RecordingDir, err = os.MkdirTemp("", "kip-bench-recordings-"); err != nil {
		return nil, err
	}
	if p.Plain, p.PlainProbe, err = r.startKip(ctx, &p.procs, "kip", r.Stack.UpstreamKubeconfig, kipWatchArgs()); err != nil {
		return nil, err
	}
	recorded := append(kipWatchArgs(), "--recording-dir="+p.RecordingDir)
	if p.Recorded, p.RecordedProbe, err = r.startKip(ctx, &p.procs, RecordedName, r.Stack.UpstreamKubeconfig, recorded); err != nil {
		return nil, err
	}
	return p, nil
}

// Setup describes the pair for the report.
func (p *KipPair) Setup() string {
	return fmt.Sprintf("kip (recording): a fresh `kip serve` (pid %d) with the flags of kip above; %s: the same (pid %d) with --recording-dir on a temporary directory, recording every exec and attach",
		p.Plain.PID, RecordedName, p.Recorded.PID)
}

// Probe is the probe URL of the pair's kip behind t.
func (p *KipPair) Probe(t *load.Target) string {
	if t == p.Recorded {
		return p.RecordedProbe
	}
	return p.PlainProbe
}

// ClearRecordings removes what the recorded kip wrote so far except its
// keys, so that a long run does not fill the disk. Sessions still open
// keep their files open and go on writing to them unseen.
func (p *KipPair) ClearRecordings() error {
	entries, err := os.ReadDir(p.RecordingDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == "keys" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(p.RecordingDir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// Recordings counts the recording files under the recorded kip's
// directory and their bytes: proof that it recorded, and what it wrote.
func (p *KipPair) Recordings() (files int, bytes int64, err error) {
	err = filepath.WalkDir(p.RecordingDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".cast") {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files++
		bytes += info.Size()
		return nil
	})
	return files, bytes, err
}

// Stop stops both kips and removes the recordings.
func (p *KipPair) Stop() error {
	err := p.procs.stop()
	if p.RecordingDir != "" {
		err = errors.Join(err, os.RemoveAll(p.RecordingDir))
	}
	return err
}
