package sessions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/kip-proxy/kip/internal/recording"
)

// castExt ends every recording's file name.
const castExt = ".cast"

// DirStore reads back the recordings a Dir wrote into root.
type DirStore struct {
	root    string
	readDir func(string) ([]os.DirEntry, error) // os.ReadDir; tests count the calls
}

var _ Store = (*DirStore)(nil)

// NewDirStore reads the recording directory root.
func NewDirStore(root string) *DirStore { return &DirStore{root: root, readDir: os.ReadDir} }

// ValidID reports whether id can name a recording: a plain name, as Dir
// gives them, so that no ID can reach outside the directory.
func ValidID(id string) bool { return plainName.MatchString(id) }

// List returns the recordings f selects, newest first. Only the day
// folders that f's time bounds can match are read, and files that are not
// recordings are skipped.
func (s *DirStore) List(ctx context.Context, f Filter) ([]Summary, error) {
	days, err := s.days(f.Since, f.Until)
	if err != nil {
		return nil, err
	}
	var out []Summary
	for _, day := range days {
		found, err := s.listDay(ctx, day, f)
		if err != nil {
			return nil, err
		}
		out = append(out, found...)
		// A day's sessions all started before the next newer day's, so
		// once enough are found, older days cannot change the answer.
		if f.Limit > 0 && len(out) >= f.Limit {
			break
		}
	}
	SortNewestFirst(out)
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// days are the day folders of root that sessions started between since
// and until (zero: unbounded) would be in, newest first.
func (s *DirStore) days(since, until time.Time) ([]string, error) {
	entries, err := s.readDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("reading the recording directory: %w", err)
	}
	var first, last string
	if !since.IsZero() {
		first = since.UTC().Format(time.DateOnly)
	}
	if !until.IsZero() {
		last = until.UTC().Format(time.DateOnly)
	}
	var days []string
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || !isDay(name) || (first != "" && name < first) || (last != "" && name > last) {
			continue
		}
		days = append(days, name)
	}
	slices.Sort(days)
	slices.Reverse(days)
	return days, nil
}

// isDay reports whether name is a folder Dir names: yyyy-mm-dd.
func isDay(name string) bool {
	t, err := time.Parse(time.DateOnly, name)
	return err == nil && t.Format(time.DateOnly) == name
}

func (s *DirStore) listDay(ctx context.Context, day string, f Filter) ([]Summary, error) {
	entries, err := s.readDir(filepath.Join(s.root, day))
	if err != nil {
		return nil, fmt.Errorf("reading the recording directory: %w", err)
	}
	var out []Summary
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		id, ok := strings.CutSuffix(e.Name(), castExt)
		if !ok || !ValidID(id) || !e.Type().IsRegular() {
			continue
		}
		sum, err := s.summary(filepath.Join(s.root, day, e.Name()), id)
		if err != nil {
			// One unreadable file must not hide every other recording.
			klog.V(1).InfoS("Skipping a file of the recording directory", "day", day, "file", e.Name(), "err", err)
			continue
		}
		if f.Matches(sum) {
			out = append(out, sum)
		}
	}
	return out, nil
}

func (s *DirStore) summary(path, id string) (Summary, error) {
	f, err := os.Open(path)
	if err != nil {
		return Summary{}, err
	}
	defer func() { _ = f.Close() }()
	return summaryOf(f, id)
}

// summaryOf reads the Summary of the open recording f named id.
func summaryOf(f *os.File, id string) (Summary, error) {
	fi, err := f.Stat()
	if err != nil {
		return Summary{}, err
	}
	return SummaryOf(f, fi.Size(), id, "dir")
}

// SummaryOf reads the Summary of the recording r of size bytes, which its
// store (store: "dir" or "bucket") holds under the session ID id. A
// recording whose header names another session is refused: moved or
// copied files would otherwise answer for a session they are not.
func SummaryOf(r io.ReaderAt, size int64, id, store string) (Summary, error) {
	info, err := recording.ReadInfo(r, size)
	if err != nil {
		return Summary{}, err
	}
	if info.Header.Identity.SessionID != id {
		return Summary{}, fmt.Errorf("the recording %s names session %q in its header", id, info.Header.Identity.SessionID)
	}
	sum := Summary{
		Identity: info.Header.Identity, TTY: info.Header.TTY, Start: info.Header.Start,
		End: info.End, Sealed: info.Sealed, SealKey: info.SealKey, Size: size, Store: store,
	}
	if info.PortForward != nil {
		var pf PortForward
		if err := json.Unmarshal(info.PortForward, &pf); err == nil {
			sum.PortForward = &pf
		}
	}
	return sum, nil
}

// Open returns the recording id, searched for in every day folder,
// newest first.
func (s *DirStore) Open(ctx context.Context, id string) (io.ReadCloser, Summary, error) {
	if !ValidID(id) {
		return nil, Summary{}, ErrNotFound
	}
	days, err := s.days(time.Time{}, time.Time{})
	if err != nil {
		return nil, Summary{}, err
	}
	for _, day := range days {
		if err := ctx.Err(); err != nil {
			return nil, Summary{}, err
		}
		path := filepath.Join(s.root, day, id+castExt)
		// Lstat: a link planted in the directory would point outside it.
		if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() {
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, Summary{}, fmt.Errorf("reading the recording %s: %w", id, err)
			}
			continue
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, Summary{}, fmt.Errorf("opening the recording %s: %w", id, err)
		}
		sum, err := summaryOf(f, id)
		if err != nil {
			_ = f.Close()
			return nil, Summary{}, fmt.Errorf("reading the recording %s: %w", id, err)
		}
		return f, sum, nil
	}
	return nil, Summary{}, ErrNotFound
}

// Matches reports whether f selects s.
func (f Filter) Matches(s Summary) bool {
	return (f.User == "" || f.User == s.User) &&
		((f.Cluster == "" && !f.ExactCluster) || f.Cluster == s.Cluster) &&
		(f.Namespace == "" || f.Namespace == s.Namespace) &&
		(f.Pod == "" || f.Pod == s.Pod) &&
		(f.Since.IsZero() || !s.Start.Before(f.Since)) &&
		(f.Until.IsZero() || !s.Start.After(f.Until))
}

// SortNewestFirst sorts summaries by start time, newest first, and by
// session ID among those that started at once, so lists are stable.
func SortNewestFirst(s []Summary) {
	slices.SortFunc(s, func(a, b Summary) int {
		if c := b.Start.Compare(a.Start); c != 0 {
			return c
		}
		return strings.Compare(a.SessionID, b.SessionID)
	})
}
