package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/gofrs/flock"
)

// ErrNoEntry means the cache holds nothing for a key yet.
var ErrNoEntry = errors.New("no cached credential")

// maxEntrySize bounds what Load reads: an entry is a few kilobytes, and a
// huge file in the cache is not one kip wrote.
const maxEntrySize = 1 << 20

// lockRetry is how often a waiting process tries the lock again.
const lockRetry = 50 * time.Millisecond

// Key names one login configuration. Two invocations share an entry only
// when every field matches.
type Key struct {
	// Kind is "oidc" or "static".
	Kind     string   `json:"kind"`
	Issuer   string   `json:"issuer,omitempty"`
	ClientID string   `json:"clientID,omitempty"`
	Scopes   []string `json:"scopes,omitempty"`
	// TokenSHA256 identifies a static token without writing it to disk.
	TokenSHA256 string `json:"tokenSHA256,omitempty"`
	KipServer   string `json:"kipServer,omitempty"`
	Mode        string `json:"mode"`
}

// fileName is the key's digest, so that issuer URLs and server names never
// become path components.
func (k Key) fileName() string {
	k.Scopes = slices.Sorted(slices.Values(k.Scopes))
	b, _ := json.Marshal(k) // a struct of strings always marshals
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Entry is one cached login.
type Entry struct {
	Key          Key    `json:"key"`
	IDToken      string `json:"idToken,omitempty"`
	RefreshToken string `json:"refreshToken,omitempty"`
	// Certificate and PrivateKey are PEM; the key was generated on this
	// machine and never sent anywhere.
	Certificate string `json:"clientCertificateData,omitempty"`
	PrivateKey  string `json:"clientKeyData,omitempty"`
	// HandedTo names who was last handed the cached certificate or ID
	// token: the process (kubectl, by pid) and the cluster it asked for.
	HandedTo string `json:"handedTo,omitempty"`
}

// Store is a cache directory.
type Store struct {
	dir string
}

// New returns the store under cacheDir. Entries live in its "login"
// subdirectory, which kip owns and keeps at 0700 even when cacheDir itself
// is shared.
func New(cacheDir string) *Store {
	return &Store{dir: filepath.Join(cacheDir, "login")}
}

// Dir is where the entries are.
func (s *Store) Dir() string { return s.dir }

// Handle is a locked cache entry. Everything between Lock and Unlock
// (check, login, exchange, save) happens while other kip processes wait.
type Handle struct {
	key  Key
	path string
	lock *flock.Flock
}

// Lock takes the entry's lock, waiting for other kip processes as long as
// ctx allows. waiting, if not nil, is called once when the lock is busy,
// so the user learns why nothing happens.
func (s *Store) Lock(ctx context.Context, key Key, waiting func()) (*Handle, error) {
	if err := s.ensureDir(); err != nil {
		return nil, err
	}
	name := key.fileName()
	h := &Handle{
		key:  key,
		path: filepath.Join(s.dir, name+".json"),
		lock: flock.New(filepath.Join(s.dir, name+".lock"), flock.SetPermissions(0o600)),
	}
	ok, err := h.lock.TryLock()
	if err == nil && !ok {
		if waiting != nil {
			waiting()
		}
		ok, err = h.lock.TryLockContext(ctx, lockRetry)
	}
	if err != nil {
		return nil, fmt.Errorf("locking the login cache %s: %w", h.lock.Path(), err)
	}
	if !ok {
		return nil, fmt.Errorf("locking the login cache %s: %w", h.lock.Path(), ctx.Err())
	}
	return h, nil
}

// Unlock releases the lock.
func (h *Handle) Unlock() error {
	return h.lock.Unlock()
}

// Path is the entry's file.
func (h *Handle) Path() string { return h.path }

// Load reads the entry. It returns ErrNoEntry when there is none, and
// another error saying why when the file exists but must not be used.
func (h *Handle) Load() (Entry, error) {
	fi, err := os.Lstat(h.path)
	if errors.Is(err, os.ErrNotExist) {
		return Entry{}, ErrNoEntry
	}
	if err != nil {
		return Entry{}, err
	}
	if err := checkPrivateFile(h.path, fi); err != nil {
		return Entry{}, fmt.Errorf("%s: %w", h.path, err)
	}
	b, err := readLimited(h.path)
	if err != nil {
		return Entry{}, err
	}
	var e Entry
	if err := json.Unmarshal(b, &e); err != nil {
		return Entry{}, fmt.Errorf("%s is not a kip login cache entry: %w", h.path, err)
	}
	if e.Key.fileName() != h.key.fileName() {
		return Entry{}, fmt.Errorf("%s was written for another login configuration", h.path)
	}
	return e, nil
}

// Save replaces the entry atomically: readers that do not hold the lock
// see the old file or the new one, never half of one.
func (h *Handle) Save(e Entry) error {
	e.Key = h.key
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return writeAtomic(h.path, b)
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	b, err := io.ReadAll(io.LimitReader(f, maxEntrySize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxEntrySize {
		return nil, fmt.Errorf("%s is larger than any entry kip writes", path)
	}
	return b, nil
}

// writeAtomic writes a 0600 temporary file next to path and renames it.
func writeAtomic(path string, b []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing the login cache: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	// CreateTemp already uses 0600 on Unix, and on Windows the file
	// inherits the directory's private ACL; this keeps it so whatever the
	// umask or the folder's inheritance says.
	if err = makePrivate(f.Name(), false); err != nil {
		return fmt.Errorf("making the login cache private: %w", err)
	}
	if _, err = f.Write(b); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("writing the login cache: %w", err)
	}
	return nil
}

// ensureDir creates the entry directory 0700 and refuses one that another
// user could have planted (a symlink, or a directory owned by someone else).
func (s *Store) ensureDir() error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("creating the login cache directory: %w", err)
	}
	fi, err := os.Lstat(s.dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("the login cache %s is not a directory; remove it or choose another --cache-dir", s.dir)
	}
	if err := ownerCheck(s.dir, fi); err != nil {
		return fmt.Errorf("the login cache %s: %w; choose another --cache-dir", s.dir, err)
	}
	if privacyCheck(s.dir, fi) == nil {
		return nil
	}
	if err := makePrivate(s.dir, true); err != nil {
		return fmt.Errorf("making the login cache %s private: %w", s.dir, err)
	}
	return nil
}

// checkPrivateFile accepts only what kip itself writes: a regular file of
// the current user that nobody else can open (the mode on Unix, the access
// control list on Windows).
func checkPrivateFile(path string, fi os.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return errors.New("not a regular file")
	}
	if err := ownerCheck(path, fi); err != nil {
		return err
	}
	return privacyCheck(path, fi)
}
