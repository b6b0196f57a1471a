package report

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/kip-proxy/kip/bench/internal/results"
)

// Markdown renders the report. plots maps a plot's role to its file name;
// notes, when not empty, is written by hand and follows the goals: what
// changed since the last reference report and what it bought.
func Markdown(run *results.Run, plots map[string]string, notes string) string {
	var b strings.Builder
	header(&b, run)
	goalsSection(&b, run)
	if notes = strings.TrimSpace(notes); notes != "" {
		b.WriteString(notes + "\n\n")
	}
	smallGetSection(&b, run, plots)
	proxyOnlySection(&b, run, plots)
	listSection(&b, run, plots)
	watchSection(&b, run, plots)
	portForwardSection(&b, run)
	exchangeSection(&b, run)
	gatewaySection(&b, run)
	recordingSection(&b, run, plots)
	profileSection(&b, run.Profiles)
	return b.String()
}

func header(b *strings.Builder, run *results.Run) {
	kind := "`make bench`"
	if run.Smoke {
		kind = "smoke run (tiny sizes; the numbers mean little)"
	}
	fmt.Fprintf(b, "# kip benchmark, %s\n\n", run.Started.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(b, "A %s that took %.1f minutes. Every target was measured in the same run, taking turns round by round, so that machine noise fell on all of them alike. All traffic stayed on 127.0.0.1.\n\n", kind, run.Seconds/60)
	m, v := run.Machine, run.Versions
	t := newTable("cores", "CPU", "memory", "kernel", "load average before / after")
	t.add(fmt.Sprint(m.Cores), m.CPUModel, fmt.Sprintf("%d GB", m.MemoryGB), m.Kernel, fmt.Sprintf("%.2f / %.2f", m.LoadBefore, m.LoadAfter))
	t.write(b)
	t = newTable("kip", "kube-apiserver", "kubectl", "etcd", "Go")
	t.add(v.Kip, v.KubeAPIServer, v.Kubectl, v.Etcd, v.Go)
	t.write(b)
	b.WriteString("How the targets ran:\n\n")
	for _, s := range run.Setup {
		fmt.Fprintf(b, "- %s\n", s)
	}
	b.WriteString("\n")
	for _, name := range slices.Sorted(maps.Keys(run.Skipped)) {
		if reason := run.Skipped[name]; strings.HasPrefix(reason, "failed:") {
			fmt.Fprintf(b, "**%s %s**\n\n", name, reason)
		}
	}
}

func goalsSection(b *strings.Builder, run *results.Run) {
	b.WriteString("## Goals\n\nWhere kip stands against each goal. These are reported, not asserted.\n\n")
	t := newTable("goal", "wanted", "kip", "verdict")
	for _, g := range goals(run) {
		got := g.got
		if got == "" {
			got = na
		}
		t.add(g.name, g.want, got, g.verdict())
	}
	t.write(b)
}

func skippedSection(b *strings.Builder, title, reason string) {
	fmt.Fprintf(b, "## %s\n\n", title)
	if reason == "" {
		reason = "not run"
	}
	fmt.Fprintf(b, "No numbers: %s.\n\n", reason)
}

func image(b *strings.Builder, plots map[string]string, role, alt string) {
	if file, ok := plots[role]; ok {
		fmt.Fprintf(b, "![%s](%s)\n\n", alt, file)
	}
}

func profileSection(b *strings.Builder, profiles []results.Profile) {
	if len(profiles) == 0 {
		return
	}
	b.WriteString("## Profiles\n\nTaken under extra load that is counted nowhere above. Open one with `go tool pprof -http=: <file>`.\n\n")
	for _, p := range profiles {
		fmt.Fprintf(b, "### %s\n\nDuring %s. File `%s`.\n\n", p.Name, p.About, p.File)
		fmt.Fprintf(b, "<details><summary>top, flat</summary>\n\n```\n%s```\n\n</details>\n\n", trimPprof(p.Top))
		fmt.Fprintf(b, "Top, cumulative:\n\n```\n%s```\n\n", trimPprof(p.TopCum))
	}
}

// trimPprof drops pprof's preamble lines (file, type, time) but keeps the
// sample totals.
func trimPprof(out string) string {
	var keep []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "File:") || strings.HasPrefix(line, "Build ID:") || strings.HasPrefix(line, "Time:") {
			continue
		}
		keep = append(keep, line)
	}
	return strings.Join(keep, "\n")
}
