package metrics

import "testing"

// TestLongRunningEnds counts by its reasons and nothing else: an
// unknown reason would add a series per caller's whim.
func TestLongRunningEnds(t *testing.T) {
	r := NewRecorder()
	if got := exposedValue(t, r, `kip_longrunning_ended_total{reason="shutdown"}`); got != "0" {
		t.Errorf("before any end, shutdown reads %s, want 0", got)
	}
	e := r.LongRunningEnds()
	e.Ended(EndedWriteDeadline)
	e.Ended(EndedShutdown)
	e.Ended(EndedShutdown)
	e.Ended(EndedRevoked)
	e.Ended("client-whim")
	for series, want := range map[string]string{
		`kip_longrunning_ended_total{reason="write-deadline"}`:  "1",
		`kip_longrunning_ended_total{reason="shutdown"}`:        "2",
		`kip_longrunning_ended_total{reason="revoked"}`:         "1",
		`kip_longrunning_ended_total{reason="cluster-removed"}`: "0",
		`kip_longrunning_ended_total{reason="client-whim"}`:     "absent",
	} {
		if got := exposedValue(t, r, series); got != want {
			t.Errorf("%s = %s, want %s", series, got, want)
		}
	}
	var none *Recorder
	none.LongRunningEnds().Ended(EndedShutdown)
}
