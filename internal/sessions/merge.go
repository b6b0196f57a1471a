package sessions

import (
	"context"
	"errors"
	"io"
)

// Merged reads several Stores as one: the recording directory and the
// bucket it is uploaded to hold the same sessions, and a session is
// listed once.
type Merged []Store

var _ Store = Merged(nil)

// Merge returns a Store over stores, the nil ones left out. Where two hold
// the same session, the sealed copy wins (a copy still being written, or
// cut short, is not the whole session), and else the first given.
func Merge(stores ...Store) Store {
	var m Merged
	for _, s := range stores {
		if s != nil {
			m = append(m, s)
		}
	}
	if len(m) == 1 {
		return m[0]
	}
	return m
}

// List lists every store with f and keeps one copy of each session. A
// store that fails fails the list: a partial answer would look whole.
func (m Merged) List(ctx context.Context, f Filter) ([]Summary, error) {
	byID := map[string]int{}
	var out []Summary
	for _, s := range m {
		found, err := s.List(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, sum := range found {
			i, seen := byID[sum.SessionID]
			if !seen {
				byID[sum.SessionID] = len(out)
				out = append(out, sum)
				continue
			}
			if better(sum, out[i]) {
				out[i] = sum
			}
		}
	}
	SortNewestFirst(out)
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// better reports whether a should be shown instead of b, a copy of the
// same session from a later store.
func better(a, b Summary) bool { return a.Sealed && !b.Sealed }

// Open opens the best copy of id: the first sealed one, else the first.
func (m Merged) Open(ctx context.Context, id string) (io.ReadCloser, Summary, error) {
	var (
		best    io.ReadCloser
		bestSum Summary
		errs    []error
	)
	for _, s := range m {
		rc, sum, err := s.Open(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if best == nil || better(sum, bestSum) {
			if best != nil {
				_ = best.Close()
			}
			best, bestSum = rc, sum
		} else {
			_ = rc.Close()
		}
		if bestSum.Sealed {
			break
		}
	}
	if best != nil {
		return best, bestSum, nil
	}
	if len(errs) > 0 {
		return nil, Summary{}, errors.Join(errs...)
	}
	return nil, Summary{}, ErrNotFound
}
