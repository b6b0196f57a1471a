package options

import (
	"github.com/spf13/pflag"

	"github.com/kip-proxy/kip/internal/server"
)

// Observability is what kip records about the requests it serves, besides
// metrics (always on, on the probe port) and the audit log.
type Observability struct {
	// AccessLog writes one log line per request. Off by default: the
	// audit log is the record, and a line per request costs throughput.
	AccessLog bool
}

// AddFlags registers the observability flags on fs.
func (o *Observability) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.AccessLog, "access-log", o.AccessLog,
		"Log one line per request: user, impersonated user, verb, path, status code and latency. Never headers, query or body. Off by default; the audit log is the record, and a line per request costs throughput.")
}

// Validate reports every invalid observability option. Every value of
// today's options is valid; the method keeps Serve's shape uniform.
func (o *Observability) Validate() []error { return nil }

// ApplyTo sets the server configuration from the options.
func (o *Observability) ApplyTo(cfg *server.Config) {
	cfg.AccessLog = o.AccessLog
}
