package options

import (
	"math"
	"testing"
	"time"
)

func TestSessionsValidate(t *testing.T) {
	tests := []struct {
		name string
		o    Sessions
		want []string
	}{
		{name: "defaults"},
		{name: "a namespace", o: Sessions{Namespace: "payments"}},
		{name: "every namespace", o: Sessions{AllNamespaces: true}},
		{name: "a directory", o: Sessions{Dir: "/var/lib/kip/recordings"}},
		{name: "both -A and -n", o: Sessions{AllNamespaces: true, Namespace: "x"}, want: []string{"--all-namespaces and --namespace contradict"}},
		{name: "a directory and a kubeconfig", o: Sessions{Dir: "/d", ClientConfig: ClientConfig{Kubeconfig: "/k"}}, want: []string{"--dir reads recordings without kip"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkErrors(t, tt.o.Validate(), tt.want) })
	}
}

func TestSessionsListValidate(t *testing.T) {
	tests := []struct {
		name string
		o    SessionsList
		dir  string
		want []string
	}{
		{name: "defaults"},
		{name: "json", o: SessionsList{Output: "json"}},
		{name: "since a duration", o: SessionsList{Since: "2h"}},
		{name: "since a time", o: SessionsList{Since: "2026-12-06T14:02:00Z"}},
		{name: "yaml", o: SessionsList{Output: "yaml"}, want: []string{`--output must be text or json, not "yaml"`}},
		{name: "a negative limit", o: SessionsList{Limit: -1}, want: []string{"--limit must be 0 or more"}},
		{name: "since a date alone", o: SessionsList{Since: "2026-12-06"}, want: []string{"neither a duration"}},
		{name: "since the future", o: SessionsList{Since: "-1h"}, want: []string{"in the future"}},
		{name: "every error at once", o: SessionsList{Output: "x", Limit: -1, Since: "soon"}, want: []string{"--output", "--limit", "--since"}},
		{name: "a window", o: SessionsList{Since: "2026-12-06T14:00:00Z", Until: "2026-12-06T15:00:00Z"}},
		{name: "until a duration", o: SessionsList{Until: "30m"}},
		{name: "until before since", o: SessionsList{Since: "1h", Until: "2h"}, want: []string{"--until 2h is before --since 1h"}},
		{name: "until nonsense", o: SessionsList{Until: "yesterday"}, want: []string{`--until "yesterday" is neither`}},
		{name: "a cluster in a directory", o: SessionsList{Cluster: "prod-eu"}, dir: "/var/lib/kip/recordings"},
		{name: "a cluster through kip", o: SessionsList{Cluster: "prod-eu"}, want: []string{"--cluster selects sessions in a recording directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkErrors(t, tt.o.Validate(tt.dir), tt.want) })
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                          {},
		"90m":                       now.Add(-90 * time.Minute),
		"2026-12-01T00:00:00+02:00": time.Date(2026, 11, 30, 22, 0, 0, 0, time.UTC),
	} {
		got, err := ParseSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

func TestSessionsPlayValidate(t *testing.T) {
	tests := []struct {
		name string
		o    SessionsPlay
		want []string
	}{
		{name: "defaults", o: *NewSessionsPlay()},
		{name: "faster, idle capped", o: SessionsPlay{Speed: 8, MaxIdle: time.Second}},
		{name: "raw", o: SessionsPlay{Speed: 1, Raw: true}},
		{name: "zero speed", o: SessionsPlay{Speed: 0}, want: []string{"--speed must be a positive number"}},
		{name: "negative speed", o: SessionsPlay{Speed: -2}, want: []string{"--speed must be a positive number"}},
		{name: "NaN speed", o: SessionsPlay{Speed: math.NaN()}, want: []string{"--speed must be a positive number"}},
		{name: "infinite speed", o: SessionsPlay{Speed: math.Inf(1)}, want: []string{"--speed must be a positive number"}},
		{name: "negative idle", o: SessionsPlay{Speed: 1, MaxIdle: -time.Second}, want: []string{"--max-idle must be 0 or more"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkErrors(t, tt.o.Validate(), tt.want) })
	}
}

// TestSessionsListFilter: the flags become the Filter a store applies; a
// cluster named in a directory matches that cluster only, never the
// sessions of a kip without clusters.
func TestSessionsListFilter(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	o := SessionsList{User: "alice", Pod: "api", Since: "2h", Until: "1h", Cluster: "prod-eu", Limit: 5}
	f := o.Filter(now)
	if f.User != "alice" || f.Pod != "api" || f.Cluster != "prod-eu" || !f.ExactCluster || f.Limit != 5 ||
		!f.Since.Equal(now.Add(-2*time.Hour)) || !f.Until.Equal(now.Add(-time.Hour)) {
		t.Errorf("Filter = %+v", f)
	}
	if f := (&SessionsList{}).Filter(now); f.ExactCluster || !f.Since.IsZero() || !f.Until.IsZero() {
		t.Errorf("the empty options filter %+v, want nothing", f)
	}
}
