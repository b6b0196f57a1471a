package revocation

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/user"
	clocktesting "k8s.io/utils/clock/testing"
)

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func entryJSON(t *testing.T, e Entry) (string, string) {
	t.Helper()
	v, err := e.encode()
	if err != nil {
		t.Fatal(err)
	}
	return e.Key(), v
}

func listOf(t *testing.T, now time.Time, entries ...Entry) *List {
	t.Helper()
	l := NewList(nil)
	l.clock = clocktesting.NewFakePassiveClock(now)
	data := map[string]string{}
	for _, e := range entries {
		k, v := entryJSON(t, e)
		data[k] = v
	}
	if problems := l.Set(data); len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	return l
}

func revoke(kind Kind, value string) Entry {
	return Entry{Kind: kind, Value: value, Before: t0, Expires: t0.Add(24 * time.Hour)}
}

func TestCheck(t *testing.T) {
	alice := &user.DefaultInfo{Name: "alice", UID: "u-1", Groups: []string{"dev", "ops"},
		Extra: map[string][]string{user.CredentialIDKey: {"X509SHA256=ab"}}}
	before, after := t0.Add(-time.Second), t0.Add(time.Second)
	cases := []struct {
		name    string
		entry   Entry
		now     time.Time
		issued  time.Time
		refused bool
	}{
		{"user, issued before", revoke(KindUser, "alice"), after, before, true},
		{"user, issued after: a fresh sign-in", revoke(KindUser, "alice"), after, after, false},
		{"user, issued exactly at the time", revoke(KindUser, "alice"), after, t0, false},
		{"user, issue time unknown (webhook token)", revoke(KindUser, "alice"), after, time.Time{}, true},
		{"another user", revoke(KindUser, "bob"), after, before, false},
		{"user name is case-sensitive, as RBAC is", revoke(KindUser, "Alice"), after, before, false},
		{"uid", revoke(KindUID, "u-1"), after, before, true},
		{"group", revoke(KindGroup, "ops"), after, before, true},
		{"credential", revoke(KindCredential, "X509SHA256=ab"), after, before, true},
		{"another credential", revoke(KindCredential, "X509SHA256=cd"), after, before, false},
		{"expired entry", revoke(KindUser, "alice"), t0.Add(25 * time.Hour), before, false},
		{"lock: fresh credentials refused until its time", Entry{Kind: KindUser, Value: "alice", Before: t0.Add(time.Hour), Expires: t0.Add(25 * time.Hour)}, after, after, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, err := listOf(t, c.now, c.entry).Check(alice, Credential{Issued: c.issued})
			if err != nil {
				t.Fatal(err)
			}
			if (e != nil) != c.refused {
				t.Errorf("refused by %v, want refused=%v", e, c.refused)
			}
		})
	}
}

func TestCheckBeforeLoadRefuses(t *testing.T) {
	l := NewList(nil)
	if _, err := l.Check(&user.DefaultInfo{Name: "alice"}, Credential{Issued: t0}); err == nil {
		t.Fatal("an unread list accepted a credential")
	}
	l.Set(nil)
	if e, err := l.Check(&user.DefaultInfo{Name: "alice"}, Credential{Issued: t0}); err != nil || e != nil {
		t.Fatalf("an empty list refused: %v, %v", e, err)
	}
}

func TestMalformedEntriesFailClosed(t *testing.T) {
	alice := &user.DefaultInfo{Name: "alice"}
	cases := map[string]struct {
		value   string
		refused bool
	}{
		"no times":          {`{"kind":"user","value":"alice"}`, true},
		"expires first":     {`{"kind":"user","value":"alice","before":"2026-12-06T12:00:00Z","expires":"2026-12-01T12:00:00Z"}`, true},
		"bad time":          {`{"kind":"user","value":"alice","before":"yesterday","expires":"2026-12-09T12:00:00Z"}`, true},
		"unknown kind":      {`{"kind":"email","value":"alice","before":"2026-12-06T12:00:00Z","expires":"2026-12-09T12:00:00Z"}`, false},
		"not JSON":          {`alice`, false},
		"credential, no id": {`{"kind":"credential","value":"ab","before":"2026-12-06T12:00:00Z","expires":"2026-12-09T12:00:00Z"}`, false},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			l := NewList(nil)
			problems := l.Set(map[string]string{"k": c.value})
			if len(problems) != 1 {
				t.Fatalf("problems %v, want one", problems)
			}
			e, err := l.Check(alice, Credential{Issued: time.Now()})
			if err != nil || (e != nil) != c.refused {
				t.Errorf("entry %v, err %v; want refused=%v", e, err, c.refused)
			}
			if c.refused && !strings.Contains(problems[0].Error(), "refused until it is fixed") {
				t.Errorf("problem %q does not say the subject stays refused", problems[0])
			}
		})
	}
}

func TestTwoEntriesForOneSubjectCoverBoth(t *testing.T) {
	a := revoke(KindUser, "alice")
	b := Entry{Kind: KindUser, Value: "alice", Before: t0.Add(time.Hour), Expires: t0.Add(2 * time.Hour)}
	l := NewList(nil)
	l.clock = clocktesting.NewFakePassiveClock(t0.Add(90 * time.Minute))
	_, va := entryJSON(t, a)
	_, vb := entryJSON(t, b)
	l.Set(map[string]string{"user.a": va, "user.b": vb})
	if e, _ := l.Check(&user.DefaultInfo{Name: "alice"}, Credential{Issued: t0.Add(30 * time.Minute)}); e == nil {
		t.Error("the later time of the two entries was not enforced")
	}
	l.clock = clocktesting.NewFakePassiveClock(t0.Add(3 * time.Hour))
	if e, _ := l.Check(&user.DefaultInfo{Name: "alice"}, Credential{Issued: t0}); e == nil {
		t.Error("the later expiry of the two entries was not enforced")
	}
	if n := l.InForce(); n != 1 {
		t.Errorf("%d entries in force, want 1", n)
	}
}

func TestTokenIssued(t *testing.T) {
	jwt := func(payload string) string {
		return "eyJhbGciOiJub25lIn0." + b64(payload) + ".c2ln"
	}
	cases := map[string]struct {
		token string
		want  time.Time
	}{
		"iat":          {jwt(`{"iat":1796558400}`), time.Unix(1796558400, 0)},
		"fractional":   {jwt(`{"iat":1796558400.5}`), time.Unix(1796558400, 5e8)},
		"no iat":       {jwt(`{"sub":"a"}`), time.Time{}},
		"iat a string": {jwt(`{"iat":"soon"}`), time.Time{}},
		"negative":     {jwt(`{"iat":-5}`), time.Time{}},
		"opaque token": {"abcdef", time.Time{}},
		"bad base64":   {"a.!!!.c", time.Time{}},
	}
	for name, c := range cases {
		if got := TokenIssued(c.token); !got.Equal(c.want) {
			t.Errorf("%s: %v, want %v", name, got, c.want)
		}
	}
}
