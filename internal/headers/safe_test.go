package headers

import (
	"strings"
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"
)

func TestCheckUser(t *testing.T) {
	tests := []struct {
		name    string
		user    user.DefaultInfo
		wantErr string
	}{
		{"plain", user.DefaultInfo{Name: "alice", UID: "1", Groups: []string{"dev"}, Extra: map[string][]string{"example.com/a b": {"ä %"}}}, ""},
		{"CRLF in the name", user.DefaultInfo{Name: "eve\r\nImpersonate-Group: system:masters"}, "user name"},
		{"NUL in the UID", user.DefaultInfo{Name: "eve", UID: "1\x00"}, "UID"},
		{"tab in a group", user.DefaultInfo{Name: "eve", Groups: []string{"dev", "a\tb"}}, "group"},
		{"newline in an extra key", user.DefaultInfo{Name: "eve", Extra: map[string][]string{"example.com/a\nb": {"x"}}}, "extra key"},
		{"newline in an extra value", user.DefaultInfo{Name: "eve", Extra: map[string][]string{"example.com/a": {"blue\nImpersonate-Group: system:masters"}}}, "value of extra"},
		{"DEL in a group", user.DefaultInfo{Name: "eve", Groups: []string{"a\x7f"}}, "group"},
		{"C1 control in the name", user.DefaultInfo{Name: "eve\u0085"}, "user name"},
		{"invalid UTF-8 in the name", user.DefaultInfo{Name: "eve\xff"}, "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckUser(&tt.user)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatal("accepted")
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("error %q does not name %q", err, tt.wantErr)
			}
		})
	}
}
