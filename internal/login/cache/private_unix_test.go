//go:build unix

package cache

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// assertPrivate: kip's files are 0600 and its directory 0700, exactly.
func assertPrivate(t *testing.T, path string, dir bool) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	want := os.FileMode(0o600)
	if dir {
		want = 0o700
	}
	if fi.Mode().Perm() != want {
		t.Errorf("%s: mode %04o, want %04o", path, fi.Mode().Perm(), want)
	}
}

func openToOthers(t *testing.T, path string) {
	t.Helper()
	if err := os.Chmod(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestEntryNotPrivateIsRefused: an entry the group or others may open, or
// that another user owns, is never read, whatever it holds.
func TestEntryNotPrivateIsRefused(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func(t *testing.T, path string)
		wantErr string
	}{
		{name: "group may read", tamper: chmod(0o640), wantErr: "open to other users (mode 0640)"},
		{name: "others may write", tamper: chmod(0o602), wantErr: "open to other users (mode 0602)"},
		{name: "owned by another user", tamper: func(t *testing.T, path string) {
			if os.Getuid() != 0 {
				t.Skip("only root can give a file to another user")
			}
			if err := os.Chown(path, 4242, 4242); err != nil {
				t.Fatal(err)
			}
		}, wantErr: "owned by another user (uid 4242)"},
		{name: "a symlink to a private file", tamper: func(t *testing.T, path string) {
			other := filepath.Join(t.TempDir(), "entry")
			if err := os.Rename(path, other); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(other, path); err != nil {
				t.Fatal(err)
			}
		}, wantErr: "not a regular file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := New(t.TempDir()).Lock(context.Background(), Key{Kind: "static"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = h.Unlock() }()
			if err := h.Save(Entry{IDToken: "id"}); err != nil {
				t.Fatal(err)
			}
			tc.tamper(t, h.Path())
			if _, err := h.Load(); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Load = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func chmod(mode os.FileMode) func(*testing.T, string) {
	return func(t *testing.T, path string) {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
}
