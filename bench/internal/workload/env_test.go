package workload

import (
	"testing"

	"github.com/kip-proxy/kip/bench/internal/load"
)

func TestRotated(t *testing.T) {
	a, b, c := &load.Target{Name: "a"}, &load.Target{Name: "b"}, &load.Target{Name: "c"}
	targets := []*load.Target{a, b, c}
	for round, want := range []string{"abc", "bca", "cab", "abc"} {
		got := ""
		for _, t := range rotated(targets, round) {
			got += t.Name
		}
		if got != want {
			t.Errorf("round %d: %s, want %s", round, got, want)
		}
	}
	if targets[0] != a {
		t.Error("rotated changed its input")
	}
}

func TestRequestsAt(t *testing.T) {
	if got := requestsAt(20000, 32); got != 20000 {
		t.Errorf("c=32: %d", got)
	}
	if got := requestsAt(20000, 1); got != 4000 {
		t.Errorf("c=1: %d", got)
	}
	if got := requestsAt(3, 1); got != 1 {
		t.Errorf("tiny: %d", got)
	}
}
