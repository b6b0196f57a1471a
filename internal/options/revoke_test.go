package options

import (
	"strings"
	"testing"
	"time"

	"github.com/kip-proxy/kip/internal/revocation"
)

func TestRevokeEntry(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name        string
		opts        RevokeEntry
		before, exp time.Time
		err         string
	}{
		{"now, for a day", RevokeEntry{Keep: 24 * time.Hour}, now, now.Add(24 * time.Hour), ""},
		{"a lock", RevokeEntry{For: time.Hour, Keep: 24 * time.Hour}, now.Add(time.Hour), now.Add(25 * time.Hour), ""},
		{"a given time", RevokeEntry{Before: "2026-12-06T10:00:00Z", Keep: 3 * time.Hour}, now.Add(-2 * time.Hour), now.Add(time.Hour), ""},
		{"expired already", RevokeEntry{Before: "2026-12-06T10:00:00Z", Keep: time.Hour}, time.Time{}, time.Time{}, "raise --keep"},
		{"both times", RevokeEntry{Before: "2026-12-06T10:00:00Z", For: time.Hour, Keep: time.Hour}, time.Time{}, time.Time{}, "give one"},
		{"not RFC 3339", RevokeEntry{Before: "yesterday", Keep: time.Hour}, time.Time{}, time.Time{}, "--before"},
		{"negative lock", RevokeEntry{For: -time.Hour, Keep: time.Hour}, time.Time{}, time.Time{}, "--for"},
		{"no keep", RevokeEntry{}, time.Time{}, time.Time{}, "--keep"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, err := c.opts.Entry(revocation.KindUser, "alice", now)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one naming %s", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !e.Before.Equal(c.before) || !e.Expires.Equal(c.exp) {
				t.Errorf("entry %s–%s, want %s–%s", e.Before, e.Expires, c.before, c.exp)
			}
		})
	}
	if _, err := (&RevokeEntry{Keep: time.Hour}).Entry(revocation.KindCredential, "not-an-id", now); err == nil {
		t.Error("a credential that is no credential-id was accepted")
	}
}
