package options

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/kip-proxy/kip/internal/version"
)

func TestVersionPrint(t *testing.T) {
	v := version.Info{Version: "v1.2.3", Commit: "abc", GoVersion: "go1.26.8", Platform: "linux/amd64"}
	tests := []struct {
		output  string
		want    string
		wantErr string
	}{
		{output: "", want: "kip v1.2.3\ncommit: abc\ngo: go1.26.8 linux/amd64\n"},
		{output: "json", want: `"version": "v1.2.3"`},
		{output: "yaml", wantErr: `--output "yaml": want json`},
	}
	for _, tt := range tests {
		t.Run(tt.output, func(t *testing.T) {
			o := &Version{Output: tt.output}
			if err := o.Validate(); tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Validate() = %v, want %q", err, tt.wantErr)
				}
				return
			} else if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := o.Print(&out, v); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), tt.want) {
				t.Errorf("Print() = %q, want %q", out.String(), tt.want)
			}
			if tt.output == "json" {
				var back version.Info
				if err := json.Unmarshal(out.Bytes(), &back); err != nil || back != v {
					t.Errorf("JSON round trip = %+v, %v", back, err)
				}
			}
		})
	}
}
