package ratelimit

import (
	"fmt"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func TestClientKey(t *testing.T) {
	cases := []struct{ remoteAddr, want string }{
		{"192.0.2.10:40000", "192.0.2.10"},
		{"192.0.2.10:1", "192.0.2.10"},
		{"[::ffff:192.0.2.10]:40000", "192.0.2.10"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff:ffff:ffff:ffff]:1", "2001:db8:1:2::/64"},
		{"[2001:db8:1:3::1]:1", "2001:db8:1:3::/64"},
		{"[fe80::1%eth0]:1", "fe80::/64"},
		{"[::1]:1", "::/64"},
		{"@", "@"},
		{"", ""},
		{"not an address", "not an address"},
	}
	for _, tc := range cases {
		if got := ClientKey(tc.remoteAddr); got != tc.want {
			t.Errorf("ClientKey(%q) = %q, want %q", tc.remoteAddr, got, tc.want)
		}
	}
}

// TestFailures walks one budget through takes, refunds and refills: a
// burst of 2 and a unit back every 10s.
func TestFailures(t *testing.T) {
	clock := clocktesting.NewFakePassiveClock(time.Unix(1_700_000_000, 0))
	l := NewFailures(2, 10*time.Second, 100, clock)
	steps := []struct {
		name     string
		advance  time.Duration
		take     bool // else refund
		client   string
		wantOK   bool
		wantWait time.Duration
	}{
		{name: "first", take: true, client: "a", wantOK: true},
		{name: "second", take: true, client: "a", wantOK: true},
		{name: "spent", take: true, client: "a", wantWait: 10 * time.Second},
		{name: "another client", take: true, client: "b", wantOK: true},
		{name: "part way", advance: 4 * time.Second, take: true, client: "a", wantWait: 6 * time.Second},
		{name: "a refund", client: "a"},
		{name: "the refunded unit", take: true, client: "a", wantOK: true},
		{name: "spent again", take: true, client: "a", wantWait: 6 * time.Second},
		{name: "refilled", advance: 7 * time.Second, take: true, client: "a", wantOK: true},
		{name: "a refund of a client with none out", client: "c"},
		{name: "c has its burst, no more", take: true, client: "c", wantOK: true},
		{name: "c second", take: true, client: "c", wantOK: true},
		{name: "c spent", take: true, client: "c", wantWait: 10 * time.Second},
	}
	for _, s := range steps {
		clock.SetTime(clock.Now().Add(s.advance))
		if !s.take {
			l.Refund(s.client)
			continue
		}
		wait, ok := l.Take(s.client)
		if ok != s.wantOK || wait != s.wantWait {
			t.Fatalf("%s: Take(%s) = %v, %v; want %v, %v", s.name, s.client, wait, ok, s.wantWait, s.wantOK)
		}
	}
}

// TestFailureTableBounded: a flood of failing addresses keeps at most
// maxClients budgets, and an address that is back to a full budget is
// dropped.
func TestFailureTableBounded(t *testing.T) {
	l := NewFailures(2, time.Second, 3, clocktesting.NewFakePassiveClock(time.Unix(1_700_000_000, 0)))
	for i := range 100 {
		client := ClientKey(fmt.Sprintf("198.51.100.%d:1", i))
		if _, ok := l.Take(client); !ok {
			t.Fatalf("%s has a fresh budget", client)
		}
		if n := l.buckets.Len(); n > 3 {
			t.Fatalf("%d budgets kept, want at most 3", n)
		}
	}
	l.Refund("198.51.100.99")
	if n := l.buckets.Len(); n != 2 {
		t.Errorf("%d budgets kept after a refund filled one, want 2", n)
	}
}
