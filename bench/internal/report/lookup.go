package report

import "github.com/kip-proxy/kip/bench/internal/results"

func findLoad(loads []results.Load, target string, concurrency int) *results.Load {
	for i := range loads {
		if loads[i].Target == target && loads[i].Concurrency == concurrency {
			return &loads[i]
		}
	}
	return nil
}

func findList(lists []results.List, target, encoding string) *results.List {
	for i := range lists {
		if lists[i].Target == target && lists[i].Encoding == encoding {
			return &lists[i]
		}
	}
	return nil
}

func findWatch(watches []results.Watch, target string) *results.Watch {
	for i := range watches {
		if watches[i].Target == target {
			return &watches[i]
		}
	}
	return nil
}

// concurrencies returns the distinct concurrencies in loads, in order.
func concurrencies(loads []results.Load) []int {
	var out []int
	seen := map[int]bool{}
	for _, l := range loads {
		if !seen[l.Concurrency] {
			seen[l.Concurrency] = true
			out = append(out, l.Concurrency)
		}
	}
	return out
}

// encodingName shows an Accept-Encoding; none is the interesting default.
func encodingName(enc string) string {
	if enc == "" {
		return "none"
	}
	return enc
}
