package sessions

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	auditinternal "k8s.io/apiserver/pkg/apis/audit"
	"k8s.io/apiserver/pkg/audit"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/kip-proxy/kip/internal/caller"
	"github.com/kip-proxy/kip/internal/recording"
)

// castHeader is the part of a recording's first line these tests read.
type castHeader struct {
	Kip struct {
		recording.Identity
		TTY bool `json:"tty"`
	} `json:"kip"`
}

// rememberOriginal is ctx as caller.WithOriginalUser leaves it for u.
func rememberOriginal(ctx context.Context, u user.Info) context.Context {
	var out context.Context
	caller.WithOriginalUser(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { out = r.Context() })).
		ServeHTTP(nil, httptest.NewRequest("GET", "/", nil).WithContext(request.WithUser(ctx, u)))
	return out
}

func TestDirRecordsEachSessionInItsOwnFile(t *testing.T) {
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "recordings")
	d, err := NewDir(root, key)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 6, 23, 59, 0, 0, time.UTC)
	d.now = func() time.Time { return start }
	pub, err := ReadPublicKey(d.PublicKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	fp, _ := Fingerprint(key.Public())
	if d.PublicKeyFile() != filepath.Join(root, "keys", fp+".pub") {
		t.Errorf("public key at %s, want keys/<fingerprint>.pub", d.PublicKeyFile())
	}
	alice := &user.DefaultInfo{Name: "alice", UID: "u-1", Groups: []string{"devs"}}
	admin := &user.DefaultInfo{Name: "admin", Groups: []string{"ops"}}

	tests := []struct {
		name     string
		auditID  string
		original user.Info // before impersonation; nil when none
		query    string
		wantName string // the file's name without .cast; empty: a random one
		want     recording.Identity
		wantTTY  bool
	}{
		{name: "named by its audit ID", auditID: "a1b2c3", query: "container=app&command=sh&command=-c&command=id&tty=true",
			wantName: "a1b2c3", wantTTY: true,
			want: recording.Identity{User: "alice", UID: "u-1", Groups: []string{"devs"}, Namespace: "ns", Pod: "pod",
				Container: "app", Subresource: "exec", Command: []string{"sh", "-c", "id"}, AuditID: "a1b2c3"}},
		{name: "an impersonating caller is named", auditID: "imp-1", original: admin, query: "command=id",
			wantName: "imp-1",
			want: recording.Identity{User: "alice", Caller: "admin", UID: "u-1", Groups: []string{"devs"}, Namespace: "ns", Pod: "pod",
				Subresource: "exec", Command: []string{"id"}, AuditID: "imp-1"}},
		{name: "an audit ID already taken gets a name of its own", auditID: "a1b2c3",
			want: recording.Identity{User: "alice", UID: "u-1", Groups: []string{"devs"}, Namespace: "ns", Pod: "pod",
				Subresource: "exec", AuditID: "a1b2c3"}},
		{name: "an audit ID that is a path is not a file name", auditID: "../../escape",
			want: recording.Identity{User: "alice", UID: "u-1", Groups: []string{"devs"}, Namespace: "ns", Pod: "pod",
				Subresource: "exec", AuditID: "../../escape"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/api/v1/namespaces/ns/pods/pod/exec?"+tt.query, nil)
			ctx := audit.WithAuditContext(r.Context())
			ac := audit.AuditContextFrom(ctx)
			if err := ac.Init(audit.RequestAuditConfig{Level: auditinternal.LevelMetadata}, nil); err != nil {
				t.Fatal(err)
			}
			audit.WithAuditID(ctx, types.UID(tt.auditID))
			ctx = request.WithRequestInfo(ctx, &request.RequestInfo{IsResourceRequest: true, Verb: "create",
				Resource: "pods", Subresource: "exec", Namespace: "ns", Name: "pod"})
			if tt.original != nil {
				ctx = rememberOriginal(ctx, tt.original)
			}
			ctx = request.WithUser(ctx, alice)
			rec, err := d.Open(r.WithContext(ctx))
			if err != nil {
				t.Fatal(err)
			}
			rec.Event(recording.Event{Time: start, Stream: recording.StreamStdout, Data: []byte("hello\n")})
			if err := rec.Close(); err != nil {
				t.Fatal(err)
			}
			path := rec.(*file).f.Name()
			if tt.wantName != "" && path != filepath.Join(root, "2026-12-06", tt.wantName+".cast") {
				t.Errorf("recorded to %s, want %s.cast", path, tt.wantName)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = f.Close() }()
			if fi, _ := f.Stat(); fi.Mode().Perm() != 0o600 {
				t.Errorf("recording mode %v, want 0600", fi.Mode().Perm())
			}
			var h castHeader
			line, _ := bufio.NewReader(f).ReadBytes('\n')
			if err := json.Unmarshal(line, &h); err != nil {
				t.Fatal(err)
			}
			want := tt.want
			want.Replica = d.replica
			want.SessionID = h.Kip.SessionID
			if h.Kip.SessionID+".cast" != filepath.Base(path) {
				t.Errorf("session ID %q does not name the file %s", h.Kip.SessionID, path)
			}
			if got, _ := ac.GetEventAnnotation(AuditAnnotation); got != h.Kip.SessionID {
				t.Errorf("audit annotation %s = %q, want the session ID %q", AuditAnnotation, got, h.Kip.SessionID)
			}
			if !reflect.DeepEqual(h.Kip.Identity, want) || h.Kip.TTY != tt.wantTTY {
				t.Errorf("header identity\n%+v tty %v, want\n%+v tty %v", h.Kip.Identity, h.Kip.TTY, want, tt.wantTTY)
			}
			if _, err := f.Seek(0, 0); err != nil {
				t.Fatal(err)
			}
			if err := recording.Verify(f, pub); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
	if entries, _ := os.ReadDir(filepath.Dir(root)); len(entries) != 1 {
		t.Errorf("%d entries beside the recording directory, want only it", len(entries))
	}
}
