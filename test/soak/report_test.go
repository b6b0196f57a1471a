package soak

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// report is what one soak found, written as samples.csv, summary.md and
// plot.svg.
type report struct {
	cfg                config
	loadStart, loadEnd time.Time
	samples            []sample
	snap               snapshot
	kipPID             int
	kipArgs            []string
	kipExited          error
}

func (s *soak) report() report {
	s.mu.Lock()
	defer s.mu.Unlock()
	return report{
		cfg: s.cfg, loadStart: s.loadStart, loadEnd: s.loadEnd, samples: slices.Clone(s.samples),
		snap: s.tally.snapshot(), kipPID: s.r.kip.Pid(), kipArgs: s.r.kipArgs, kipExited: s.kipExited,
	}
}

// write creates dir and the report's files in it, with the last MiB of
// kip's log beside them.
func (rep report) write(dir, kipLog string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := map[string][]byte{
		"samples.csv": rep.csv(),
		"summary.md":  []byte(rep.summary()),
		"plot.svg":    rep.plot(),
	}
	if tail, err := fileTail(kipLog, 1<<20); err == nil {
		files["kip.log"] = tail
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func fileTail(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		if _, err := f.Seek(-n, io.SeekEnd); err != nil {
			return nil, err
		}
	}
	return io.ReadAll(f)
}

// seconds is t's offset from the start of the load.
func (rep report) seconds(t time.Time) float64 { return t.Sub(rep.loadStart).Seconds() }

func (rep report) csv() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"seconds", "stage", "rss_bytes", "goroutines", "open_fds", "served_total", "failed_total", "upstream_restarting"})
	for _, s := range rep.samples {
		_ = w.Write([]string{
			strconv.FormatFloat(rep.seconds(s.at), 'f', 1, 64), s.stage,
			strconv.FormatInt(s.rss, 10), strconv.FormatInt(s.goroutines, 10), strconv.FormatInt(s.fds, 10),
			strconv.FormatInt(s.served, 10), strconv.FormatInt(s.failed, 10), strconv.FormatBool(s.restarting),
		})
	}
	w.Flush()
	return b.Bytes()
}

func (rep report) plot() []byte {
	in := plotInput{
		title:   fmt.Sprintf("kip soak %s: %s of mixed traffic, kube-apiserver restarted every %s", rep.loadStart.UTC().Format("2006-01-02 15:04 UTC"), rep.cfg.duration, rep.cfg.restartEvery),
		loadEnd: rep.seconds(rep.loadEnd) / 60,
	}
	for _, s := range rep.samples {
		in.minutes = append(in.minutes, rep.seconds(s.at)/60)
		in.rssMiB = append(in.rssMiB, orNaN(s.rss, 1<<20))
		in.goroutines = append(in.goroutines, orNaN(s.goroutines, 1))
	}
	if b, ok := rep.stat("baseline"); ok {
		in.baselineRSS, in.baselineG = orNaN(b.rss, 1<<20), orNaN(b.goroutines, 1)
	}
	for _, r := range rep.snap.restarts {
		end := r.ready
		if end.IsZero() {
			end = rep.loadEnd
		}
		in.restarts = append(in.restarts, [2]float64{rep.seconds(r.began) / 60, rep.seconds(end) / 60})
	}
	return renderPlot(in)
}

// orNaN scales v, or is NaN for a value that could not be read.
func orNaN(v int64, unit float64) float64 {
	if v < 0 {
		return math.NaN()
	}
	return float64(v) / unit
}

// stat is the last sample of stage.
func (rep report) stat(stage string) (sample, bool) {
	for i := len(rep.samples) - 1; i >= 0; i-- {
		if rep.samples[i].stage == stage {
			return rep.samples[i], true
		}
	}
	return sample{}, false
}

// extremes are the lowest and highest readable values of f under load.
func (rep report) extremes(f func(sample) int64) (lo, hi int64) {
	lo, hi = -1, -1
	for _, s := range rep.samples {
		v := f(s)
		if s.stage != "load" || v < 0 {
			continue
		}
		if lo < 0 || v < lo {
			lo = v
		}
		hi = max(hi, v)
	}
	return lo, hi
}

// quarterMedian is the median of f over the load samples in quarter q
// (1 to 4) of the load's time: the second and last quarters compared show
// growth under the same load.
func (rep report) quarterMedian(f func(sample) int64, q int) int64 {
	span := rep.loadEnd.Sub(rep.loadStart)
	from, to := rep.loadStart.Add(span*time.Duration(q-1)/4), rep.loadStart.Add(span*time.Duration(q)/4)
	var vs []int64
	for _, s := range rep.samples {
		if s.stage == "load" && !s.at.Before(from) && !s.at.After(to) && f(s) >= 0 {
			vs = append(vs, f(s))
		}
	}
	if len(vs) == 0 {
		return -1
	}
	slices.Sort(vs)
	return vs[len(vs)/2]
}

func rssOf(s sample) int64        { return s.rss }
func goroutinesOf(s sample) int64 { return s.goroutines }
func fdsOf(s sample) int64        { return s.fds }

func (rep report) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# kip soak, %s\n\n", rep.loadStart.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "- Load: %s of mixed traffic (asked: %s), through kip (pid %d) built from this checkout, `kip %s`.\n",
		rep.loadEnd.Sub(rep.loadStart).Round(time.Second), rep.cfg.duration, rep.kipPID, strings.Join(rep.kipArgs, " "))
	fmt.Fprintf(&b, "- Mix: %s.\n", defaultMix)
	fmt.Fprintf(&b, "- Machine: %d CPUs, %s/%s, %s; kip shares it with etcd, kube-apiserver, Hydra, two test nodes and the load generator.\n",
		runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	rep.writeRestarts(&b)
	rep.writeKinds(&b)
	rep.writeErrors(&b)
	rep.writeResources(&b)
	b.WriteString("\n## Verdict\n\n")
	if problems := rep.problems(); len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintf(&b, "- FAIL: %s\n", p)
		}
	} else {
		b.WriteString("- PASS: kip stayed up, no request failed outside the restarts, every kind of request was served again after the last restart, and kip's goroutines came back to their baseline.\n")
	}
	b.WriteString("\nFiles: samples.csv (one row per 10 s sample), plot.svg (RSS and goroutines over time, restarts in red), kip.log (the end of kip's log).\n")
	return b.String()
}

func (rep report) writeRestarts(b *strings.Builder) {
	fmt.Fprintf(b, "- Upstream restarts (every %s): %d", rep.cfg.restartEvery, len(rep.snap.restarts))
	for i, r := range rep.snap.restarts {
		sep := ", "
		if i == 0 {
			sep = ": "
		}
		if r.err != nil {
			fmt.Fprintf(b, "%s#%d at %s FAILED: %v", sep, i+1, since(rep.loadStart, r.began), r.err)
			continue
		}
		fmt.Fprintf(b, "%s#%d at %s, back in %.1f s", sep, i+1, since(rep.loadStart, r.began), r.ready.Sub(r.began).Seconds())
	}
	fmt.Fprintf(b, ". Errors from a restart's stop until %s after kube-apiserver is ready again count as during the restart.\n", restartSettle)
}

func since(start, t time.Time) string { return t.Sub(start).Round(time.Second).String() }

func (rep report) writeKinds(b *strings.Builder) {
	b.WriteString("\n## Requests per kind\n\n| kind | served | failed during restarts | failed otherwise |\n| --- | ---: | ---: | ---: |\n")
	var served, duringRestart, otherwise int64
	for _, k := range kinds {
		r, o := rep.snap.failedIn(k, phaseRestart), rep.snap.failedIn(k, phaseSteady)
		fmt.Fprintf(b, "| %s | %d | %d | %d |\n", k, rep.snap.served[k], r, o)
		if k != kindSignIn {
			served, duringRestart, otherwise = served+rep.snap.served[k], duringRestart+r, otherwise+o
		}
	}
	fmt.Fprintf(b, "| **total through kip** | **%d** | **%d** | **%d** |\n", served, duringRestart, otherwise)
	if secs := rep.loadEnd.Sub(rep.loadStart).Seconds(); secs > 0 {
		fmt.Fprintf(b, "\n%.1f requests per second through kip on average. ", float64(served)/secs)
	}
	fmt.Fprintf(b, "The watches received %d events; %d times a watch's resource version had expired and it listed again (counted under list). "+
		"Sign-ins at Hydra are not requests to kip and are left out of the total.\n", rep.snap.watchEvents, rep.snap.relists)
}

func (rep report) writeErrors(b *strings.Builder) {
	b.WriteString("\n## Errors by cause\n\n")
	type row struct {
		kind            kind
		cause           string
		restart, steady int64
		example         string
	}
	rows := map[[2]string]*row{}
	for key, n := range rep.snap.failed {
		id := [2]string{string(key.kind), key.cause}
		if rows[id] == nil {
			rows[id] = &row{kind: key.kind, cause: key.cause, example: rep.snap.example[key]}
		}
		if key.phase == phaseRestart {
			rows[id].restart += n
		} else {
			rows[id].steady += n
			rows[id].example = rep.snap.example[key] // a steady error's message says more
		}
	}
	if len(rows) == 0 {
		b.WriteString("None.\n")
		return
	}
	var list []*row
	for _, r := range rows {
		list = append(list, r)
	}
	slices.SortFunc(list, func(a, c *row) int {
		if d := slices.Index(kinds, a.kind) - slices.Index(kinds, c.kind); d != 0 {
			return d
		}
		return strings.Compare(a.cause, c.cause)
	})
	b.WriteString("| kind | cause | during restarts | otherwise | a message |\n| --- | --- | ---: | ---: | --- |\n")
	for _, r := range list {
		fmt.Fprintf(b, "| %s | %s | %d | %d | %s |\n", r.kind, r.cause, r.restart, r.steady, mdCell(r.example))
	}
}

func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ").Replace(truncate(s, 200))
}

func (rep report) writeResources(b *strings.Builder) {
	b.WriteString("\n## kip's memory, goroutines and file descriptors\n\n")
	base, _ := rep.stat("baseline")
	final, _ := rep.stat("load")
	after, hasAfter := rep.stat("after")
	rLo, rHi := rep.extremes(rssOf)
	gLo, gHi := rep.extremes(goroutinesOf)
	fLo, fHi := rep.extremes(fdsOf)
	b.WriteString("| | RSS | goroutines | open fds |\n| --- | ---: | ---: | ---: |\n")
	fmt.Fprintf(b, "| baseline (before the load, clients idle) | %s | %s | %s |\n", mib(base.rss), count(base.goroutines), count(base.fds))
	fmt.Fprintf(b, "| min under load | %s | %s | %s |\n", mib(rLo), count(gLo), count(fLo))
	fmt.Fprintf(b, "| max under load | %s | %s | %s |\n", mib(rHi), count(gHi), count(fHi))
	fmt.Fprintf(b, "| median, 2nd quarter of the load | %s | %s | %s |\n", mib(rep.quarterMedian(rssOf, 2)), count(rep.quarterMedian(goroutinesOf, 2)), count(rep.quarterMedian(fdsOf, 2)))
	fmt.Fprintf(b, "| median, last quarter of the load | %s | %s | %s |\n", mib(rep.quarterMedian(rssOf, 4)), count(rep.quarterMedian(goroutinesOf, 4)), count(rep.quarterMedian(fdsOf, 4)))
	fmt.Fprintf(b, "| final, as the load stopped | %s | %s | %s |\n", mib(final.rss), count(final.goroutines), count(final.fds))
	if hasAfter {
		fmt.Fprintf(b, "| after the load (%s later, clients' connections closed) | %s | %s | %s |\n",
			after.at.Sub(rep.loadEnd).Round(time.Second), mib(after.rss), count(after.goroutines), count(after.fds))
	}
	b.WriteString("\nBack to baseline after the load:\n")
	if !hasAfter {
		b.WriteString("- not measured: the soak ended before the load did.\n")
		return
	}
	fmt.Fprintf(b, "- goroutines: %s (%s after, %s before; allowed up to %d).\n",
		yesNo(after.goroutines >= 0 && after.goroutines <= goroutineAllowance(base.goroutines)), count(after.goroutines), count(base.goroutines), goroutineAllowance(base.goroutines))
	fmt.Fprintf(b, "- open fds: %s (%s after, %s before; allowed up to %d).\n",
		yesNo(after.fds >= 0 && after.fds <= base.fds+10), count(after.fds), count(base.fds), base.fds+10)
	fmt.Fprintf(b, "- RSS: %s (%s after, %s before; within 25%% counts as back). "+
		"Go gives freed memory back to the system gradually, so RSS says less than the goroutines; "+
		"the 2nd- and last-quarter medians above show whether it grew under the same load.\n",
		yesNo(after.rss >= 0 && float64(after.rss) <= 1.25*float64(base.rss)), mib(after.rss), mib(base.rss))
}

func count(v int64) string {
	if v < 0 {
		return "?"
	}
	return strconv.FormatInt(v, 10)
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

// problems are the reasons the soak fails, each a sentence.
func (rep report) problems() []string {
	var out []string
	if rep.kipExited != nil {
		out = append(out, rep.kipExited.Error())
	}
	var lastReady time.Time
	for i, r := range rep.snap.restarts {
		if r.err != nil {
			out = append(out, fmt.Sprintf("restart #%d failed: %v", i+1, r.err))
		}
		lastReady = r.ready
	}
	var steady, wrong []string
	for key, n := range rep.snap.failed {
		line := fmt.Sprintf("%s: %d× %s (%s)", key.kind, n, key.cause, truncate(rep.snap.example[key], 200))
		switch {
		case key.cause == cause(errWrongData):
			wrong = append(wrong, line)
		case key.phase == phaseSteady && key.kind != kindSignIn:
			steady = append(steady, line)
		}
	}
	slices.Sort(steady)
	slices.Sort(wrong)
	if len(wrong) > 0 {
		out = append(out, "streams or lists carried wrong data: "+strings.Join(wrong, "; "))
	}
	if len(steady) > 0 {
		out = append(out, "requests failed while the upstream was not restarting: "+strings.Join(steady, "; "))
	}
	for _, k := range kinds {
		if k == kindSignIn {
			continue
		}
		last, ok := rep.snap.lastServed[k]
		if k == kindWatch && rep.snap.lastEvent.After(last) {
			// A watch reopened while kube-apiserver was already serving
			// but not yet ready may stay open past the end: its events
			// show it works.
			last, ok = rep.snap.lastEvent, true
		}
		if !ok || !last.After(lastReady) {
			out = append(out, fmt.Sprintf("no %s request was served after the last restart", k))
		}
	}
	base, _ := rep.stat("baseline")
	if after, ok := rep.stat("after"); ok && (after.goroutines < 0 || after.goroutines > goroutineAllowance(base.goroutines)) {
		out = append(out, fmt.Sprintf("kip's goroutines did not come back after the load: %s, baseline %s (allowed up to %d)",
			count(after.goroutines), count(base.goroutines), goroutineAllowance(base.goroutines)))
	}
	return out
}

// String describes the mix for the report.
func (m mix) String() string {
	return fmt.Sprintf("%d GET loops (one every %s each, HTTP/2 and HTTP/1.1), a LIST of %d ConfigMaps every %s, a patch every %s, "+
		"%d watches (1–5 min timeouts, resumed, half on HTTP/1.1), exec of 64 KiB through cat every %s and a port-forward of 64 KiB every %s "+
		"(WebSocket and SPDY in turn, to a node kube-apiserver converts for and one it passes WebSocket to), "+
		"a credential exchange every %s (with and without CSR in turn; a new Hydra sign-in every %d) whose certificate then reads a ConfigMap on a new connection",
		m.getWorkers, m.getEvery, configMaps+1, m.listEvery, m.patchEvery, m.watches, m.execEvery, m.forwardEvery, m.exchangeEvery, m.tokenUses)
}

func TestReportProblems(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 23, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	healthy := func() report {
		served := map[kind]int64{}
		last := map[kind]time.Time{}
		for _, k := range kinds {
			served[k], last[k] = 10, at(200)
		}
		return report{
			cfg: config{duration: 4 * time.Minute, restartEvery: 90 * time.Second}, loadStart: at(0), loadEnd: at(240),
			samples: []sample{
				{at: at(-5), stage: "baseline", rss: 40 << 20, goroutines: 100, fds: 20},
				{at: at(100), stage: "load", rss: 60 << 20, goroutines: 400, fds: 80},
				{at: at(260), stage: "after", rss: 45 << 20, goroutines: 110, fds: 22},
			},
			snap: snapshot{served: served, lastServed: last, failed: map[errorKey]int64{
				{kindGet, "HTTP 503 ServiceUnavailable", phaseRestart}: 7,
				{kindSignIn, "EOF", phaseSteady}:                       1,
			}, example: map[errorKey]string{}, restarts: []restart{{began: at(90), ready: at(95)}}},
		}
	}
	for _, tc := range []struct {
		name   string
		change func(*report)
		want   []string
	}{
		{name: "healthy, errors only during the restart or at Hydra", change: func(*report) {}},
		{name: "a steady error", change: func(r *report) { r.snap.failed[errorKey{kindExec, "EOF", phaseSteady}] = 2 },
			want: []string{"requests failed while the upstream was not restarting: exec: 2× EOF"}},
		{name: "wrong data even during a restart", change: func(r *report) { r.snap.failed[errorKey{kindPortForward, "wrong data", phaseRestart}] = 1 },
			want: []string{"streams or lists carried wrong data: port-forward: 1× wrong data"}},
		{name: "a kind not served after the restart", change: func(r *report) { r.snap.lastServed[kindWatch] = at(91) },
			want: []string{"no watch request was served after the last restart"}},
		{name: "a watch opened before ready, events after", change: func(r *report) {
			r.snap.lastServed[kindWatch], r.snap.lastEvent = at(93), at(200)
		}},
		{name: "a watch opened before ready, no events after", change: func(r *report) {
			r.snap.lastServed[kindWatch], r.snap.lastEvent = at(93), at(94)
		}, want: []string{"no watch request was served after the last restart"}},
		{name: "a kind never served", change: func(r *report) { delete(r.snap.lastServed, kindExchange) },
			want: []string{"no exchange request was served after the last restart"}},
		{name: "goroutines leaked", change: func(r *report) { r.samples[2].goroutines = 121 },
			want: []string{"kip's goroutines did not come back after the load: 121, baseline 100 (allowed up to 120)"}},
		{name: "goroutines unreadable", change: func(r *report) { r.samples[2].goroutines = -1 },
			want: []string{"kip's goroutines did not come back after the load: ?"}},
		{name: "a failed restart", change: func(r *report) { r.snap.restarts[0].err = fmt.Errorf("no") },
			want: []string{"restart #1 failed: no"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := healthy()
			tc.change(&rep)
			got := rep.problems()
			if len(got) != len(tc.want) {
				t.Fatalf("problems %q, want %d starting with %q", got, len(tc.want), tc.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("problem %q, want it to start with %q", got[i], tc.want[i])
				}
			}
			sum := rep.summary()
			if (len(tc.want) == 0) != strings.Contains(sum, "- PASS") {
				t.Errorf("summary verdict disagrees with %d problems:\n%s", len(got), sum)
			}
		})
	}
}
