// Package results holds what one benchmark run measured, in the form that
// is written to results.json and read back by the report. It is data only.
package results
