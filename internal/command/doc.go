// Package command holds kip's cobra commands. Each one is thin: flags in,
// options validated, then the package that does the work.
package command
