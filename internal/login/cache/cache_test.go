package cache

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSaveLoad(t *testing.T) {
	s := New(t.TempDir())
	key := Key{Kind: "oidc", Issuer: "https://idp", ClientID: "kip", Scopes: []string{"b", "a"}, Mode: "token"}
	h, err := s.Lock(context.Background(), key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = h.Unlock() }()
	if _, err := h.Load(); !errors.Is(err, ErrNoEntry) {
		t.Fatalf("empty cache: %v", err)
	}
	if err := h.Save(Entry{IDToken: "id", RefreshToken: "rt"}); err != nil {
		t.Fatal(err)
	}
	e, err := h.Load()
	if err != nil || e.IDToken != "id" || e.RefreshToken != "rt" {
		t.Fatalf("%+v %v", e, err)
	}
	assertPrivate(t, h.Path(), false)
	left, _ := filepath.Glob(filepath.Join(s.Dir(), "*.tmp-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	// Scope order does not make another entry.
	key.Scopes = []string{"a", "b"}
	if key.fileName()+".json" != filepath.Base(h.Path()) {
		t.Error("the scope order changed the entry")
	}
}

func TestDirectoryIsMadePrivate(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "login"), 0o755); err != nil {
		t.Fatal(err)
	}
	openToOthers(t, filepath.Join(dir, "login"))
	h, err := New(dir).Lock(context.Background(), Key{Kind: "static"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = h.Unlock()
	assertPrivate(t, filepath.Join(dir, "login"), true)
}

func TestDirectoryThatIsAFileIsRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "login"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(dir).Lock(context.Background(), Key{}, nil); err == nil {
		t.Fatal("a file in place of the cache directory was accepted")
	}
}

func TestLockWaitsAndHonoursContext(t *testing.T) {
	s := New(t.TempDir())
	key := Key{Kind: "static", TokenSHA256: "x"}
	first, err := s.Lock(context.Background(), key, nil)
	if err != nil {
		t.Fatal(err)
	}
	waited := false
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = s.Lock(ctx, key, func() { waited = true })
	if err == nil || !waited || !strings.Contains(err.Error(), "locking the login cache") {
		t.Fatalf("a second lock on a held entry: waited %v, err %v", waited, err)
	}
	// Another key is not blocked.
	other, err := s.Lock(context.Background(), Key{Kind: "static", TokenSHA256: "y"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = other.Unlock()
	done := make(chan error, 1)
	go func() {
		h, err := s.Lock(context.Background(), key, nil)
		if err == nil {
			err = h.Unlock()
		}
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	_ = first.Unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
