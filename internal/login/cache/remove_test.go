package cache

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestKeysListsOnlyEntries: Keys reads back the keys kip wrote and skips
// whatever else sits in the directory.
func TestKeysListsOnlyEntries(t *testing.T) {
	s := New(t.TempDir())
	want := Key{Kind: "oidc", Issuer: "https://idp", ClientID: "kip", Scopes: []string{"b", "a"}, Mode: "token"}
	h, err := s.Lock(context.Background(), want, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Save(Entry{RefreshToken: "rt"}); err != nil {
		t.Fatal(err)
	}
	_ = h.Unlock()
	entry, err := os.ReadFile(h.Path())
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{
		"0000.json":                        entry, // another key's name
		"junk.json":                        []byte("{"),
		"notes.txt":                        []byte("{}"),
		filepath.Base(h.Path()) + ".tmp-1": entry,
	} {
		if err := os.WriteFile(filepath.Join(s.Dir(), name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(s.Dir(), "dir.json"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(h.Path(), filepath.Join(s.Dir(), "link.json")); err != nil {
		t.Logf("no symlink on this system: %v", err)
	}
	keys, err := s.Keys()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].fileName() != want.fileName() {
		t.Errorf("keys %+v, want only %+v", keys, want)
	}
}

func TestKeysOfMissingStore(t *testing.T) {
	keys, err := New(filepath.Join(t.TempDir(), "none")).Keys()
	if err != nil || len(keys) != 0 {
		t.Errorf("keys %v, err %v; want none and no error", keys, err)
	}
}

func TestRemove(t *testing.T) {
	s := New(t.TempDir())
	h, err := s.Lock(context.Background(), Key{Kind: "static", TokenSHA256: "ab", Mode: "certificate"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = h.Unlock() }()
	if err := h.Save(Entry{IDToken: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.Path()+".tmp-9", []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 2 { // a second Remove finds nothing and succeeds
		if err := h.Remove(); err != nil {
			t.Fatal(err)
		}
	}
	left, _ := filepath.Glob(filepath.Join(s.Dir(), "*.json*"))
	if len(left) != 0 {
		t.Errorf("left after Remove: %v", left)
	}
}
