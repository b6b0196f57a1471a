package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Session is one recorded exec, attach or port-forward session.
// metadata.name is the session ID (the recording's file name), and
// metadata.namespace the namespace of the pod the session reached.
type Session struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   SessionSpec   `json:"spec"`
	Status SessionStatus `json:"status,omitempty"`
}

// SessionSpec is who ran the session and where, as kip authenticated and
// routed it.
type SessionSpec struct {
	// User is the user the session ran as.
	User string `json:"user"`
	// Caller is who authenticated, when they impersonated User.
	// +optional
	Caller string `json:"caller,omitempty"`
	// UID and Groups are User's.
	// +optional
	UID string `json:"uid,omitempty"`
	// +optional
	Groups []string `json:"groups,omitempty"`
	// Cluster is the cluster of a kip gateway; empty for one cluster.
	// +optional
	Cluster string `json:"cluster,omitempty"`
	// Pod and Container are where the session ran.
	Pod string `json:"pod"`
	// +optional
	Container string `json:"container,omitempty"`
	// Subresource is exec, attach or portforward.
	Subresource string `json:"subresource"`
	// Command is what exec ran.
	// +optional
	Command []string `json:"command,omitempty"`
	// TTY says the session had a terminal.
	// +optional
	TTY bool `json:"tty,omitempty"`
	// Replica is the kip replica that relayed the session.
	// +optional
	Replica string `json:"replica,omitempty"`
	// AuditID is the ID kip's and the upstream's audit events carry.
	// +optional
	AuditID string `json:"auditID,omitempty"`
}

// SessionStatus is what the recording holds.
type SessionStatus struct {
	// Start is when the session started.
	Start metav1.Time `json:"start"`
	// End is when the recording was sealed; unset while the session runs,
	// or when kip stopped before it ended.
	// +optional
	End *metav1.Time `json:"end,omitempty"`
	// Sealed says the recording ends with kip's seal. Whether the seal is
	// valid is for kip sessions verify to say, with a key the reader
	// trusts.
	Sealed bool `json:"sealed"`
	// SealKey names the key that sealed it: "sha256:<hex>" of its PKIX
	// encoding.
	// +optional
	SealKey string `json:"sealKey,omitempty"`
	// Size is the recording's length in bytes.
	Size int64 `json:"size"`
	// PortForward is what a port-forward session carried.
	// +optional
	PortForward *PortForwardStatus `json:"portForward,omitempty"`
}

// PortForwardStatus is the traffic of a port-forward session; kip logs
// who, where and how much, never the payload.
type PortForwardStatus struct {
	// Ports are the pod's ports the client forwarded to.
	Ports []int32 `json:"ports"`
	// FromClient and ToClient count the bytes relayed each way.
	FromClient int64 `json:"fromClient"`
	ToClient   int64 `json:"toClient"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// SessionList is the sessions a list selected, newest first.
type SessionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []Session `json:"items"`
}
