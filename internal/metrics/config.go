package metrics

// The values of the config label of kip's reload metrics.
const (
	// ConfigAuthentication is the AuthenticationConfiguration file.
	ConfigAuthentication = "authentication"
)

// ConfigLoaded records that config was loaded when kip started: its reload
// counters start at zero and its last load succeeded.
func ConfigLoaded(config string) {
	Register()
	configReloads.WithLabelValues(config, resultSuccess)
	configReloads.WithLabelValues(config, resultFailure)
	configLastReloadSuccess.WithLabelValues(config).Set(1)
}

// ConfigReloaded records one attempt to apply a changed config file; err is
// why it was not applied.
func ConfigReloaded(config string, err error) {
	if err != nil {
		configReloads.WithLabelValues(config, resultFailure).Inc()
		configLastReloadSuccess.WithLabelValues(config).Set(0)
		return
	}
	configReloads.WithLabelValues(config, resultSuccess).Inc()
	configLastReloadSuccess.WithLabelValues(config).Set(1)
}

// ConfigInSync records that config's file again matches what kip runs
// with, as when a broken file is put back as it was: no reload happened,
// but the last reload's failure no longer describes the file.
func ConfigInSync(config string) {
	configLastReloadSuccess.WithLabelValues(config).Set(1)
}
