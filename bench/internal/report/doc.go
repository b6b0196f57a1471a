// Package report turns one run's results into report.md, results.json and
// the PNG plots beside them. Goals are reported, never asserted: a missed
// goal is a finding, not a failure.
package report
