package options

import (
	logsapi "k8s.io/component-base/logs/api/v1"
	// The json format of --logging-format; without it only text exists.
	_ "k8s.io/component-base/logs/json/register"
)

// ApplyLogging switches the process's logging to the configured format and
// verbosity. It changes global state, once per process, so `kip serve`
// calls it and in-process test servers do not.
func (o *Serve) ApplyLogging() error {
	return o.applyLogging(nil)
}

// applyLogging takes output streams for tests.
func (o *Serve) applyLogging(streams *logsapi.LoggingOptions) error {
	return logsapi.ValidateAndApplyWithOptions(o.Logs, streams, nil)
}
