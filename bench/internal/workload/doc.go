// Package workload runs each benchmark workload against every target,
// taking turns round by round so that whatever else the machine is doing
// falls on all targets alike, and returns what it measured.
package workload
