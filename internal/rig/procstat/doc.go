// Package procstat reads what a process costs from /proc: CPU seconds from
// /proc/<pid>/stat and resident memory from /proc/<pid>/status. The
// benchmarks run every proxy as a process of its own so that these numbers
// belong to the proxy alone; the soak and load tests read kip's memory the
// same way.
package procstat
