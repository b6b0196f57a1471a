package sessions

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kip-proxy/kip/internal/recording"
)

var day1 = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

// writeCast records a session of id into root's day folder for start,
// sealed unless cut, and returns its path.
func writeCast(t *testing.T, root string, key crypto.Signer, id recording.Identity, start time.Time, cut bool) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := recording.NewWriter(&buf, recording.Header{Identity: id, Start: start}, key)
	if err != nil {
		t.Fatal(err)
	}
	w.Event(recording.Event{Time: start.Add(time.Second), Stream: recording.StreamStdout, Data: []byte("hi\n")})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	if cut {
		data = data[:bytes.LastIndexByte(data[:len(data)-1], '\n')+1]
	}
	dir := filepath.Join(root, start.UTC().Format(time.DateOnly))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, id.SessionID+".cast")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func session(id, user, ns, pod string) recording.Identity {
	return recording.Identity{SessionID: id, User: user, Namespace: ns, Pod: pod, Subresource: "exec"}
}

// testDir is a recording directory with five sessions over three days
// and what else a directory may hold.
func testDir(t *testing.T) (string, crypto.Signer) {
	t.Helper()
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	writeCast(t, root, key, session("a1", "alice", "payments", "api"), day1, false)
	writeCast(t, root, key, session("a2", "alice", "payments", "db"), day1.Add(time.Hour), false)
	writeCast(t, root, key, session("b1", "bob", "web", "front"), day1.Add(24*time.Hour), true)
	writeCast(t, root, key, session("b2", "bob", "payments", "api"), day1.Add(48*time.Hour), false)
	cl := session("c1", "carol", "payments", "api")
	cl.Cluster = "prod"
	writeCast(t, root, key, cl, day1.Add(49*time.Hour), false)

	// What a directory may hold besides recordings, none of which is one.
	files := map[string]string{
		"2026-12-04/garbage.cast":       "\x00\x01\x02 not json\n",
		"2026-12-04/truncated.cast":     `{"version":2,"kip":{"sessionID":"trunc`,
		"2026-12-04/empty.cast":         "",
		"2026-12-04/huge.cast":          strings.Repeat("{", recording.MaxHeaderLine+100) + "\n",
		"2026-12-04/moved.cast":         "", // filled below with a1's bytes
		"2026-12-04/notes.txt":          "hello",
		"2026-12-04/.hidden.cast":       "",
		"not-a-day/x1.cast":             "",
		"2026-13-45/x2.cast":            "",
		"keys/whatever.pub":             "",
		"2026-12-05/sub.cast/inner.txt": "a directory named like a recording",
	}
	for name, content := range files {
		path := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a1, err := os.ReadFile(filepath.Join(root, "2026-12-04", "a1.cast"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "2026-12-04", "moved.cast"), a1, 0o600); err != nil {
		t.Fatal(err)
	}
	return root, key
}

func ids(s []Summary) []string {
	var out []string
	for _, x := range s {
		out = append(out, x.SessionID)
	}
	return out
}

func TestDirStoreList(t *testing.T) {
	root, _ := testDir(t)
	s := NewDirStore(root)
	tests := []struct {
		name string
		f    Filter
		want []string
	}{
		{name: "everything, newest first", want: []string{"c1", "b2", "b1", "a2", "a1"}},
		{name: "one user", f: Filter{User: "alice"}, want: []string{"a2", "a1"}},
		{name: "one namespace", f: Filter{Namespace: "payments"}, want: []string{"c1", "b2", "a2", "a1"}},
		{name: "one pod", f: Filter{Namespace: "payments", Pod: "api"}, want: []string{"c1", "b2", "a1"}},
		{name: "one cluster", f: Filter{Cluster: "prod"}, want: []string{"c1"}},
		{name: "no cluster", f: Filter{ExactCluster: true}, want: []string{"b2", "b1", "a2", "a1"}},
		{name: "since", f: Filter{Since: day1.Add(30 * time.Minute)}, want: []string{"c1", "b2", "b1", "a2"}},
		{name: "until", f: Filter{Until: day1.Add(24 * time.Hour)}, want: []string{"b1", "a2", "a1"}},
		{name: "a window", f: Filter{Since: day1.Add(time.Hour), Until: day1.Add(48 * time.Hour)}, want: []string{"b2", "b1", "a2"}},
		{name: "a limit", f: Filter{Limit: 2}, want: []string{"c1", "b2"}},
		{name: "a limit across days", f: Filter{Limit: 4}, want: []string{"c1", "b2", "b1", "a2"}},
		{name: "nobody", f: Filter{User: "mallory"}, want: nil},
		{name: "a user in a name's clothing", f: Filter{User: "alice\n"}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.List(context.Background(), tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), tt.want) {
				t.Errorf("List = %v, want %v", ids(got), tt.want)
			}
		})
	}
}

func TestDirStoreListReadsOnlyTheDaysItNeeds(t *testing.T) {
	root, _ := testDir(t)
	s := NewDirStore(root)
	var read []string
	s.readDir = func(dir string) ([]os.DirEntry, error) {
		if dir != root {
			read = append(read, filepath.Base(dir))
		}
		return os.ReadDir(dir)
	}
	tests := []struct {
		name string
		f    Filter
		want []string
	}{
		{name: "since the second day", f: Filter{Since: day1.Add(24 * time.Hour)}, want: []string{"2026-12-06", "2026-12-05"}},
		{name: "until the first day", f: Filter{Until: day1.Add(time.Hour)}, want: []string{"2026-12-04"}},
		{name: "a limit the newest day fills", f: Filter{Limit: 2}, want: []string{"2026-12-06"}},
		{name: "since, in another time zone", f: Filter{Since: day1.Add(48 * time.Hour).In(time.FixedZone("UTC+11", 11*3600))}, want: []string{"2026-12-06"}},
		{name: "everything", want: []string{"2026-12-06", "2026-12-05", "2026-12-04"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			read = nil
			if _, err := s.List(context.Background(), tt.f); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(read, tt.want) {
				t.Errorf("read the day folders %v, want %v", read, tt.want)
			}
		})
	}
}

func TestDirStoreSummary(t *testing.T) {
	root, key := testDir(t)
	s := NewDirStore(root)
	got, err := s.List(context.Background(), Filter{User: "bob"})
	if err != nil || len(got) != 2 {
		t.Fatalf("List = %v, %v", got, err)
	}
	fp, _ := Fingerprint(key.Public())
	b2, b1 := got[0], got[1]
	if !b2.Sealed || b2.SealKey != "sha256:"+fp || b2.End.IsZero() || !b2.Start.Equal(day1.Add(48*time.Hour)) ||
		b2.Store != "dir" || b2.Size == 0 || b2.Pod != "api" || b2.Namespace != "payments" {
		t.Errorf("sealed summary %+v", b2)
	}
	if b1.Sealed || b1.SealKey != "" || !b1.End.IsZero() {
		t.Errorf("unsealed summary %+v: want no seal and no end", b1)
	}
}

func TestDirStoreOpen(t *testing.T) {
	root, key := testDir(t)
	s := NewDirStore(root)
	if err := os.Symlink(filepath.Join(root, "2026-12-04", "a1.cast"), filepath.Join(root, "2026-12-06", "link.cast")); err != nil {
		// The day folder does not exist yet.
		_ = os.MkdirAll(filepath.Join(root, "2026-12-06"), 0o700)
		if err := os.Symlink(filepath.Join(root, "2026-12-04", "a1.cast"), filepath.Join(root, "2026-12-06", "link.cast")); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		id      string
		wantErr error // nil: found
	}{
		{id: "a1"}, {id: "b1"}, {id: "c1"},
		{id: "missing", wantErr: ErrNotFound},
		{id: "../2026-12-04/a1", wantErr: ErrNotFound},
		{id: "..", wantErr: ErrNotFound},
		{id: "", wantErr: ErrNotFound},
		{id: "/etc/passwd", wantErr: ErrNotFound},
		{id: `..\2026-12-04\a1`, wantErr: ErrNotFound},
		{id: "a1.cast", wantErr: ErrNotFound},
		{id: "a1\x00", wantErr: ErrNotFound},
		{id: "keys", wantErr: ErrNotFound},
		{id: "link", wantErr: ErrNotFound},
		{id: strings.Repeat("a", 129), wantErr: ErrNotFound},
		{id: "garbage", wantErr: recording.ErrNotRecording},
		{id: "huge", wantErr: recording.ErrNotRecording},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			rc, sum, err := s.Open(context.Background(), tt.id)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Open(%q) = %v, want %v", tt.id, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			defer func() { _ = rc.Close() }()
			if sum.SessionID != tt.id {
				t.Errorf("summary of %s names %s", tt.id, sum.SessionID)
			}
			data, _ := io.ReadAll(rc)
			if sum.Sealed {
				if err := recording.Verify(bytes.NewReader(data), key.Public()); err != nil {
					t.Errorf("the recording read back does not verify: %v", err)
				}
			}
		})
	}
	// A copy under another name answers for nobody.
	if _, _, err := s.Open(context.Background(), "moved"); err == nil || !strings.Contains(err.Error(), `names session "a1"`) {
		t.Errorf("Open of a recording moved to another name = %v, want a refusal", err)
	}
}

func TestDirStoreMissingDirectory(t *testing.T) {
	s := NewDirStore(filepath.Join(t.TempDir(), "none"))
	if _, err := s.List(context.Background(), Filter{}); err == nil {
		t.Error("List of a missing directory succeeded")
	}
}

func TestDirStoreHonoursItsContext(t *testing.T) {
	root, _ := testDir(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NewDirStore(root).List(ctx, Filter{}); !errors.Is(err, context.Canceled) {
		t.Errorf("List with an ended context = %v, want context.Canceled", err)
	}
}

// TestDirStoreReadsAPortForward reads the summary a port-forward's
// recording ends with, as the Writer writes it.
func TestDirStoreReadsAPortForward(t *testing.T) {
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	id := recording.Identity{SessionID: "pf1", User: "alice", Namespace: "payments", Pod: "db", Subresource: "portforward"}
	var buf bytes.Buffer
	w, err := recording.NewWriter(&buf, recording.Header{Identity: id, Start: day1}, key)
	if err != nil {
		t.Fatal(err)
	}
	w.Event(recording.Event{Time: day1.Add(time.Minute), Stream: recording.StreamPortForward, Data: []byte(`{"ports":[5432,8080],"fromClient":120,"toClient":4096}`)})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, day1.Format(time.DateOnly))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pf1.cast"), buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := NewDirStore(root).List(context.Background(), Filter{})
	if err != nil || len(got) != 1 {
		t.Fatalf("List = %v, %v", got, err)
	}
	pf := got[0].PortForward
	if pf == nil || !slices.Equal(pf.Ports, []int32{5432, 8080}) || pf.FromClient != 120 || pf.ToClient != 4096 || !got[0].Sealed {
		t.Errorf("port-forward summary %+v of %+v", pf, got[0])
	}
}
