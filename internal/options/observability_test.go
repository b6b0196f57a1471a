package options

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/kip-proxy/kip/internal/server"
)

func TestObservabilityFlags(t *testing.T) {
	tests := []struct {
		name          string
		args          []string
		wantAccessLog bool
		wantErr       string // must appear in the parse error; empty means none
	}{
		{name: "off by default", args: nil},
		{name: "on", args: []string{"--access-log"}, wantAccessLog: true},
		{name: "on, spelled out", args: []string{"--access-log=true"}, wantAccessLog: true},
		{name: "off, spelled out", args: []string{"--access-log=false"}},
		{name: "not a boolean", args: []string{"--access-log=verbose"}, wantErr: "invalid argument"},
		{name: "a misspelled flag", args: []string{"--accesslog"}, wantErr: "unknown flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o Observability
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			fs.SetOutput(&strings.Builder{})
			o.AddFlags(fs)
			err := fs.Parse(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parse error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if errs := o.Validate(); len(errs) > 0 {
				t.Fatalf("Validate: %v", errs)
			}
			var cfg server.Config
			o.ApplyTo(&cfg)
			if cfg.AccessLog != tt.wantAccessLog {
				t.Fatalf("server.Config.AccessLog = %v, want %v", cfg.AccessLog, tt.wantAccessLog)
			}
		})
	}
}
