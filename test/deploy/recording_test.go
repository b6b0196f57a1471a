package deploy

import (
	"context"
	"slices"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// recordingOnAVolume records to a claim of the chart's, sealed with the
// operator's key, refusing sessions it cannot record.
const recordingOnAVolume = `
replicas: 1
recording:
  enabled: true
  required: true
  keySecret: kip-recording-key
  persistence: {storageClassName: fast, size: 20Gi}
`

// recordingToABucket spools on the pod's own disk and uploads to a bucket.
const recordingToABucket = `
recording:
  enabled: true
  persistence: {enabled: false}
  bucket:
    url: s3://kip-recordings/prod
    endpoint: https://s3.example.com:9000
    region: eu-west-1
    credentialsSecret: kip-s3
`

// TestChartRecording: recording.enabled gives kip a recording directory on
// the volume the values choose, the key, bucket and required flags they
// name, and the bucket's credentials from their Secret; the defaults
// record nothing.
func TestChartRecording(t *testing.T) {
	tests := []struct {
		name, values string
		wantFlags    map[string]string // "" value: the flag is absent
		wantClaim    string            // "" for an emptyDir
		wantKey      bool
		wantCreds    string // Secret of the bucket's credentials
	}{
		{name: "defaults", wantFlags: map[string]string{"--recording-dir": "", "--recording-bucket": ""}},
		{name: "on a volume", values: recordingOnAVolume, wantClaim: "kip-recordings", wantKey: true,
			wantFlags: map[string]string{"--recording-dir": "/var/lib/kip/recordings", "--recording-key-file": "/etc/kip/recording-key/key.pem", "--recording-bucket": ""}},
		{name: "to a bucket", values: recordingToABucket, wantCreds: "kip-s3",
			wantFlags: map[string]string{"--recording-dir": "/var/lib/kip/recordings", "--recording-bucket": "s3://kip-recordings/prod",
				"--recording-bucket-endpoint": "https://s3.example.com:9000", "--recording-bucket-region": "eu-west-1", "--recording-key-file": ""}},
		{name: "a claim of one's own", values: "recording: {enabled: true, persistence: {existingClaim: shared-rwx}}", wantClaim: "shared-rwx",
			wantFlags: map[string]string{"--recording-dir": "/var/lib/kip/recordings"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := mustRender(t, tt.values, chartNamespace)
			spec := deployment(t, objs).Spec.Template.Spec
			c := spec.Containers[0]
			args := flagValues(c.Args)
			for flag, want := range tt.wantFlags {
				if args[flag] != want {
					t.Errorf("%s=%q, want %q", flag, args[flag], want)
				}
			}
			if got := slices.Contains(c.Args, "--recording-required"); got != strings.Contains(tt.values, "required: true") {
				t.Errorf("--recording-required given: %v, want it with recording.required", got)
			}
			checkRecordingVolume(t, spec, objs, tt.values != "", tt.wantClaim)
			if got := hasVolume(spec, "recording-key"); got != tt.wantKey {
				t.Errorf("recording-key volume: %v, want %v", got, tt.wantKey)
			}
			if got := envSecret(c, "AWS_SECRET_ACCESS_KEY"); got != tt.wantCreds {
				t.Errorf("AWS_SECRET_ACCESS_KEY from Secret %q, want %q", got, tt.wantCreds)
			}
			if got := slices.Contains(names(ofKind(objs, "ClusterRole")), "kip-session-viewer"); got != (tt.values != "") {
				t.Errorf("ClusterRole kip-session-viewer rendered: %v, want %v", got, tt.values != "")
			}
		})
	}
}

// checkRecordingVolume checks that kip's recording directory is the claim
// want (rendered by the chart when it is kip-recordings) or an emptyDir.
func checkRecordingVolume(t *testing.T, spec corev1.PodSpec, objs []*unstructured.Unstructured, on bool, want string) {
	t.Helper()
	if !on {
		if hasVolume(spec, "recordings") {
			t.Error("a recordings volume without recording")
		}
		return
	}
	v := volume(t, spec.Volumes, "recordings")
	switch {
	case want == "" && v.EmptyDir == nil:
		t.Errorf("recordings volume %+v, want an emptyDir", v.VolumeSource)
	case want != "" && (v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != want):
		t.Errorf("recordings volume %+v, want claim %s", v.VolumeSource, want)
	}
	rendered := slices.Contains(names(ofKind(objs, "PersistentVolumeClaim")), "kip-recordings")
	if rendered != (want == "kip-recordings") {
		t.Errorf("PersistentVolumeClaim kip-recordings rendered: %v, want %v", rendered, want == "kip-recordings")
	}
}

func hasVolume(spec corev1.PodSpec, name string) bool {
	return slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == name })
}

// envSecret is the Secret the container's variable name is read from.
func envSecret(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			return e.ValueFrom.SecretKeyRef.Name
		}
	}
	return ""
}

// TestChartRefusesRecordingThatCannotWork: settings that would lose
// recordings, or that could never mount, fail the install with a message
// naming the fix.
func TestChartRefusesRecordingThatCannotWork(t *testing.T) {
	tests := []struct{ name, values, wantErr string }{
		{"two replicas on one ReadWriteOnce volume", "recording: {enabled: true}", "set recording.persistence.accessModes to [ReadWriteMany]"},
		{"no volume and no bucket", "recording: {enabled: true, persistence: {enabled: false}}", "set recording.bucket.url"},
		{"required without recording", "recording: {required: true}", "turn recording on too"},
		{"bucket settings without a bucket", "recording: {enabled: true, persistence: {accessModes: [ReadWriteMany]}, bucket: {region: eu-west-1}}", "names none"},
		{"a bucket URL that is not s3://", "recording: {enabled: true, bucket: {url: https://bucket.example.com}}", "/recording/bucket/url"},
		{"an unknown access mode", "recording: {enabled: true, persistence: {accessModes: [ReadOnlyMany]}}", "accessModes"},
		{"a size without digits", "recording: {enabled: true, persistence: {size: big}}", "/recording/persistence/size"},
		{"a bucket with many replicas on one volume", "recording: {enabled: true, persistence: {accessModes: [ReadWriteMany]}, bucket: {url: s3://kip-recordings}}", "set recording.persistence.enabled=false"},
		{"a bucket with one replica on a volume", "replicas: 1\nrecording: {enabled: true, bucket: {url: s3://kip-recordings}}", ""},
		{"many replicas sharing a ReadWriteMany volume", "recording: {enabled: true, persistence: {accessModes: [ReadWriteMany]}}", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkRender(t, tt.values, tt.wantErr) })
	}
}

// TestChartSessionViewerRights applies the chart's session-viewer
// ClusterRole for real and asks the API server whether a user bound to it
// may do what kip asks before showing a recording: list sessions and get
// their recordings, in any namespace, and nothing else.
func TestChartSessionViewerRights(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	ns := createNamespace(t, "kip-recording-rights")
	objs := mustRender(t, recordingOnAVolume, ns)
	applyRights(t, objs)
	const auditor = "auditor@example.com"
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "kip-session-viewer-" + ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "kip-session-viewer"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: auditor}},
	}
	ctx := context.Background()
	if _, err := adminClient(t).RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = adminClient(t).RbacV1().ClusterRoleBindings().Delete(context.Background(), binding.Name, metav1.DeleteOptions{})
	})
	const group = "sessions.kip.dev"
	tests := []struct {
		name    string
		attrs   authorizationv1.ResourceAttributes
		allowed bool
	}{
		{"list sessions everywhere", authorizationv1.ResourceAttributes{Verb: "list", Group: group, Resource: "sessions"}, true},
		{"list them in a namespace", authorizationv1.ResourceAttributes{Verb: "list", Group: group, Resource: "sessions", Namespace: "payments"}, true},
		{"get one", authorizationv1.ResourceAttributes{Verb: "get", Group: group, Resource: "sessions", Namespace: "payments", Name: "abc"}, true},
		{"play its recording", authorizationv1.ResourceAttributes{Verb: "get", Group: group, Resource: "sessions", Subresource: "recording", Namespace: "payments", Name: "abc"}, true},
		{"delete one", authorizationv1.ResourceAttributes{Verb: "delete", Group: group, Resource: "sessions", Namespace: "payments", Name: "abc"}, false},
		{"exec into a pod", authorizationv1.ResourceAttributes{Verb: "create", Resource: "pods", Subresource: "exec", Namespace: "payments", Name: "api"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: auditor, ResourceAttributes: &tt.attrs}}
			got, err := adminClient(t).AuthorizationV1().SubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Status.Allowed != tt.allowed {
				t.Errorf("%s may %s %s/%s: %v, want %v (%s)", auditor, tt.attrs.Verb, tt.attrs.Resource, tt.attrs.Subresource, got.Status.Allowed, tt.allowed, got.Status.Reason)
			}
		})
	}
}
