package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Keys returns the key of every entry in the store, as written in the
// entry itself. Files that are not entries kip wrote (not regular files,
// unparseable, or not named after the key they hold) are left out, and
// reading them never blocks: a FIFO planted in the cache is not opened.
func (s *Store) Keys() ([]Key, error) {
	des, err := os.ReadDir(s.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the login cache %s: %w", s.dir, err)
	}
	var keys []Key
	for _, de := range des {
		name, ok := strings.CutSuffix(de.Name(), ".json")
		if !ok || !de.Type().IsRegular() {
			continue
		}
		b, err := readLimited(filepath.Join(s.dir, de.Name()))
		if err != nil {
			continue
		}
		var e Entry
		if json.Unmarshal(b, &e) != nil || e.Key.fileName() != name {
			continue
		}
		keys = append(keys, e.Key)
	}
	return keys, nil
}

// Remove deletes the entry, and any temporary file a write of it left
// behind when it was interrupted, since that may hold tokens too. The
// lock file stays: it holds nothing, and removing it while another process
// waits on it would let two processes hold "the" lock at once.
func (h *Handle) Remove() error {
	err := os.Remove(h.path)
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("removing the cached login %s: %w", h.path, err)
	}
	// Writers hold this entry's lock, which the caller holds now, so no
	// temporary file of a write in progress matches.
	leftovers, _ := filepath.Glob(h.path + ".tmp-*")
	for _, f := range leftovers {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing the cached login's temporary file %s: %w", f, err)
		}
	}
	return nil
}
