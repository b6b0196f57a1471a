package metrics

import "k8s.io/component-base/metrics"

// RecordingStage is where recording a session failed: the values of
// kip_recording_failures_total's stage label.
type RecordingStage string

const (
	// StageOpen: the recording could not be created or begun.
	StageOpen RecordingStage = "open"
	// StageWrite: writing the session's events failed (a full disk), and
	// the rest of the session went unrecorded.
	StageWrite RecordingStage = "write"
	// StageSeal: the recording could not be signed and closed.
	StageSeal RecordingStage = "seal"
	// StageUpload: an attempt to upload a finished recording to the
	// bucket failed; it stays on disk and is tried again.
	StageUpload RecordingStage = "upload"
)

// The values of kip_recording_storage_up's store label.
const (
	// StoreDir is --recording-dir.
	StoreDir = "dir"
	// StoreBucket is --recording-bucket.
	StoreBucket = "bucket"
)

// recordedSubresources bound kip_recordings_total's subresource label.
var recordedSubresources = map[string]bool{"exec": true, "attach": true, "portforward": true}

// Recordings records kip's session recordings: how many began, what
// failed, whether their storage works and how many wait for upload.
//
// Every method is a no-op on a nil *Recordings.
type Recordings struct {
	total, failures *metrics.CounterVec
	up              *metrics.GaugeVec
	pending         *metrics.Gauge
}

// Recordings is the recorder of session recordings; nil for a nil
// Recorder, which records nothing.
func (r *Recorder) Recordings() *Recordings {
	if r == nil {
		return nil
	}
	return r.recordings
}

func (r *Recorder) declareRecordings() {
	rec := &Recordings{
		total: metrics.NewCounterVec(&metrics.CounterOpts{
			Namespace:      namespace,
			Name:           "recordings_total",
			Help:           "Sessions whose recording began, by subresource: exec, attach, portforward.",
			StabilityLevel: metrics.ALPHA,
		}, []string{"subresource"}),
		failures: metrics.NewCounterVec(&metrics.CounterOpts{
			Namespace:      namespace,
			Name:           "recording_failures_total",
			Help:           "Failures to record a session, by stage: open (not begun; the session ran unrecorded or, with --recording-required, was refused), write (events lost, e.g. a full disk), seal, upload (one failed attempt; the recording stays on disk and is tried again).",
			StabilityLevel: metrics.ALPHA,
		}, []string{"stage"}),
		up: metrics.NewGaugeVec(&metrics.GaugeOpts{
			Namespace:      namespace,
			Name:           "recording_storage_up",
			Help:           "1 if the recordings' storage worked at its last check, 0 if not, by store: dir (--recording-dir writable with space left) or bucket (--recording-bucket reachable).",
			StabilityLevel: metrics.ALPHA,
		}, []string{"store"}),
		pending: metrics.NewGauge(&metrics.GaugeOpts{
			Namespace:      namespace,
			Name:           "recording_uploads_pending",
			Help:           "Finished recordings on disk waiting to be uploaded to --recording-bucket.",
			StabilityLevel: metrics.ALPHA,
		}),
	}
	r.registry.MustRegister(rec.total, rec.failures, rec.up, rec.pending)
	// Every stage and subresource is exposed from the start, so that a
	// rate() over what never happened reads 0, not absent.
	for _, stage := range []RecordingStage{StageOpen, StageWrite, StageSeal, StageUpload} {
		rec.failures.WithLabelValues(string(stage))
	}
	for subresource := range recordedSubresources {
		rec.total.WithLabelValues(subresource)
	}
	r.recordings = rec
}

// Recorded counts a session whose recording began.
func (r *Recordings) Recorded(subresource string) {
	if r == nil {
		return
	}
	if !recordedSubresources[subresource] {
		subresource = "other"
	}
	r.total.WithLabelValues(subresource).Inc()
}

// Failed counts one failure at stage.
func (r *Recordings) Failed(stage RecordingStage) {
	if r == nil {
		return
	}
	r.failures.WithLabelValues(string(stage)).Inc()
}

// SetStorageUp records whether store (StoreDir, StoreBucket) worked at
// its last check.
func (r *Recordings) SetStorageUp(store string, up bool) {
	if r == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	r.up.WithLabelValues(store).Set(v)
}

// SetUploadsPending records how many finished recordings wait for upload.
func (r *Recordings) SetUploadsPending(n int) {
	if r == nil {
		return
	}
	r.pending.Set(float64(n))
}
