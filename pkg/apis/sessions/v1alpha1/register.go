package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the API group kip serves recorded sessions in.
const GroupName = "sessions.kip.dev"

// SchemeGroupVersion is this package's group and version.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}

const (
	// Resource is the plural resource name of Session, as it appears in
	// the URL path and in RBAC rules.
	Resource = "sessions"
	// RecordingSubresource is the subresource that reads a session's
	// recording: the asciicast v2 file as kip wrote and sealed it.
	RecordingSubresource = "recording"
	// RecordingContentType is the media type of a recording.
	RecordingContentType = "application/x-asciicast"
)

var (
	// SchemeBuilder registers this package's types.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds this package's types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(SchemeGroupVersion, &Session{}, &SessionList{})
	metav1.AddToGroupVersion(scheme, SchemeGroupVersion)
	return nil
}
