package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// TokenCredentialRequest exchanges a token that kip verifies (an OIDC ID
// token or a webhook token) for a short-lived client certificate. It is
// created, never stored: the answer to a POST carries the status.
type TokenCredentialRequest struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   TokenCredentialRequestSpec   `json:"spec"`
	Status TokenCredentialRequestStatus `json:"status,omitempty"`
}

// TokenCredentialRequestSpec is what the caller offers.
type TokenCredentialRequestSpec struct {
	// Token is the bearer token to exchange.
	Token string `json:"token"`
	// CertificateSigningRequest is an optional PEM-encoded PKCS#10
	// certificate signing request. When present, the certificate is issued
	// for its public key and no private key is returned, so the key never
	// leaves the client; its signature proves that the caller holds that
	// key. Its subject is ignored: the identity comes from the token.
	CertificateSigningRequest []byte `json:"certificateSigningRequest,omitempty"`
}

// TokenCredentialRequestStatus is kip's answer.
type TokenCredentialRequestStatus struct {
	// Credential is set when the exchange succeeded.
	// +optional
	Credential *ClusterCredential `json:"credential,omitempty"`
	// Message says why no credential was issued. It never says more than
	// "authentication failed" about a token.
	// +optional
	Message *string `json:"message,omitempty"`
}

// ClusterCredential is a client certificate for kip, in the shape of a
// client.authentication.k8s.io ExecCredential's status.
type ClusterCredential struct {
	// ExpirationTimestamp is when the certificate stops being valid.
	ExpirationTimestamp metav1.Time `json:"expirationTimestamp"`
	// ClientCertificateData is the PEM-encoded certificate.
	ClientCertificateData string `json:"clientCertificateData"`
	// ClientKeyData is the PEM-encoded private key, set only when kip
	// generated the key because the request carried no CSR.
	// +optional
	ClientKeyData string `json:"clientKeyData,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Cluster is one cluster a kip gateway fronts and the caller may reach.
// metadata.name is the cluster's name: its API is served at
// /clusters/<name>/. It carries nothing about the cluster's address or
// kip's credentials for it.
type Cluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// ClusterList is the clusters the caller may reach, sorted by name: the
// answer to GET /apis/login.kip.dev/v1alpha1/clusters.
type ClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []Cluster `json:"items"`
}
