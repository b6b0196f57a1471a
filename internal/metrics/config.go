package metrics

// The values of the config label of kip's reload metrics.
const (
	// ConfigAuthentication is the AuthenticationConfiguration file.
	ConfigAuthentication = "authentication"
)

// ConfigLoaded records that config was loaded when kip started: its reload
// counters start at zero and its last load succeeded.
func (r *Recorder) ConfigLoaded(config string) {
	if r == nil {
		return
	}
	r.configReloads.WithLabelValues(config, resultSuccess)
	r.configReloads.WithLabelValues(config, resultFailure)
	r.configLastReloadSuccess.WithLabelValues(config).Set(1)
}

// ConfigReloaded records one attempt to apply a changed config file; err is
// why it was not applied.
func (r *Recorder) ConfigReloaded(config string, err error) {
	switch {
	case r == nil:
	case err != nil:
		r.configReloads.WithLabelValues(config, resultFailure).Inc()
		r.configLastReloadSuccess.WithLabelValues(config).Set(0)
	default:
		r.configReloads.WithLabelValues(config, resultSuccess).Inc()
		r.configLastReloadSuccess.WithLabelValues(config).Set(1)
	}
}

// ConfigInSync records that config's file again matches what kip runs
// with, as when a broken file is put back as it was: no reload happened,
// but the last reload's failure no longer describes the file.
func (r *Recorder) ConfigInSync(config string) {
	if r == nil {
		return
	}
	r.configLastReloadSuccess.WithLabelValues(config).Set(1)
}
