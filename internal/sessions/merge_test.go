package sessions

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

// memStore is a Store of fixed summaries, for tests.
type memStore struct {
	name string
	sums []Summary
	err  error
}

func (m memStore) List(_ context.Context, f Filter) ([]Summary, error) {
	if m.err != nil {
		return nil, m.err
	}
	var out []Summary
	for _, s := range m.sums {
		if f.Matches(s) {
			out = append(out, s)
		}
	}
	SortNewestFirst(out)
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

func (m memStore) Open(_ context.Context, id string) (io.ReadCloser, Summary, error) {
	if m.err != nil {
		return nil, Summary{}, m.err
	}
	for _, s := range m.sums {
		if s.SessionID == id {
			return io.NopCloser(strings.NewReader(m.name)), s, nil
		}
	}
	return nil, Summary{}, ErrNotFound
}

func sum(id string, hour int, sealed bool, store string) Summary {
	s := Summary{Start: day1.Add(time.Duration(hour) * time.Hour), Sealed: sealed, Store: store}
	s.SessionID = id
	return s
}

func TestMerge(t *testing.T) {
	dir := memStore{name: "dir", sums: []Summary{sum("s1", 1, false, "dir"), sum("s2", 2, true, "dir"), sum("s4", 4, false, "dir")}}
	bucket := memStore{name: "bucket", sums: []Summary{sum("s1", 1, true, "bucket"), sum("s2", 2, true, "bucket"), sum("s3", 3, true, "bucket")}}
	m := Merge(dir, nil, bucket)

	got, err := m.List(context.Background(), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var desc []string
	for _, s := range got {
		desc = append(desc, s.SessionID+"@"+s.Store)
	}
	if want := []string{"s4@dir", "s3@bucket", "s2@dir", "s1@bucket"}; !slices.Equal(desc, want) {
		t.Errorf("merged list %v, want %v (each session once, the sealed copy first)", desc, want)
	}
	if got, _ := m.List(context.Background(), Filter{Limit: 2}); !slices.Equal(ids(got), []string{"s4", "s3"}) {
		t.Errorf("merged list with a limit %v, want s4 s3", ids(got))
	}

	for id, want := range map[string]string{"s1": "bucket", "s2": "dir", "s3": "bucket", "s4": "dir"} {
		rc, s, err := m.Open(context.Background(), id)
		if err != nil {
			t.Fatalf("Open %s: %v", id, err)
		}
		from, _ := io.ReadAll(rc)
		_ = rc.Close()
		if string(from) != want || s.Store != want {
			t.Errorf("Open %s read from %s (summary says %s), want %s", id, from, s.Store, want)
		}
	}
	if _, _, err := m.Open(context.Background(), "s9"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open of an unknown session = %v, want ErrNotFound", err)
	}

	down := memStore{err: errors.New("the bucket is unreachable")}
	if _, err := Merge(dir, down).List(context.Background(), Filter{}); err == nil {
		t.Error("a merged list with a failing store succeeded; it would look whole")
	}
	if _, s, err := Merge(dir, down).Open(context.Background(), "s1"); err != nil || s.Store != "dir" {
		t.Errorf("Open with the bucket down = %v from %q, want the directory's copy", err, s.Store)
	}
	if _, _, err := Merge(down).Open(context.Background(), "s1"); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("Open with the only store down = %v, want its error, not ErrNotFound", err)
	}
	if _, ok := Merge(dir, nil).(memStore); !ok {
		t.Error("Merge of one store is not that store")
	}
}
