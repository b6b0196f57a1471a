package workload

import "testing"

func TestGauge(t *testing.T) {
	exposition := []byte(`# HELP go_memstats_stack_inuse_bytes Number of bytes in use by the stack allocator.
# TYPE go_memstats_stack_inuse_bytes gauge
go_memstats_stack_inuse_bytes 3.3554432e+07
go_memstats_stack_inuse_bytes_total{x="y"} 1
go_memstats_heap_inuse_bytes 1234
`)
	if v, err := gauge(exposition, "go_memstats_stack_inuse_bytes"); err != nil || v != 33554432 {
		t.Errorf("stack: %v, %v", v, err)
	}
	if v, err := gauge(exposition, "go_memstats_heap_inuse_bytes"); err != nil || v != 1234 {
		t.Errorf("heap: %v, %v", v, err)
	}
	if _, err := gauge(exposition, "go_goroutines"); err == nil {
		t.Error("a missing gauge was found")
	}
}
