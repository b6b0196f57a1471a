package report

import (
	"fmt"
	"strings"
)

// table is a markdown table.
type table struct {
	header []string
	rows   [][]string
}

func newTable(header ...string) *table { return &table{header: header} }

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(b *strings.Builder) {
	line := func(cells []string) { fmt.Fprintf(b, "| %s |\n", strings.Join(cells, " | ")) }
	line(t.header)
	sep := make([]string, len(t.header))
	for i := range sep {
		sep[i] = "---"
	}
	line(sep)
	for _, r := range t.rows {
		line(r)
	}
	b.WriteString("\n")
}

// na is what a table shows where a number does not apply.
const na = "–"

func f1(v float64) string { return fmt.Sprintf("%.1f", v) }
func f2(v float64) string { return fmt.Sprintf("%.2f", v) }
func f3(v float64) string { return fmt.Sprintf("%.3f", v) }

// ratio shows a/b as a multiple, or na when b is zero.
func ratio(a, b float64) string {
	if b == 0 || a == 0 {
		return na
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func optF3(v *float64) string {
	if v == nil {
		return na
	}
	return f3(*v)
}

func mib(bytes float64) string { return fmt.Sprintf("%.1f MiB", bytes/(1<<20)) }

func optMiB(v *int64) string {
	if v == nil {
		return na
	}
	return mib(float64(*v))
}

func optKiB(v *float64) string {
	if v == nil {
		return na
	}
	return fmt.Sprintf("%.1f", *v/1024)
}
