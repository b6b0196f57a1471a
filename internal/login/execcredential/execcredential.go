package execcredential

import (
	"encoding/json"
	"fmt"
	"io"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientauthv1 "k8s.io/client-go/pkg/apis/clientauthentication/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/auth/exec"
)

// EnvVar is where kubectl puts the request.
const EnvVar = "KUBERNETES_EXEC_INFO"

const (
	group       = "client.authentication.k8s.io"
	v1          = group + "/v1"
	v1beta1     = group + "/v1beta1"
	kindExecCrd = "ExecCredential"
)

// Request is what kubectl asked for.
type Request struct {
	// APIVersion is the version kubectl expects in the answer.
	APIVersion string
	// Interactive says whether kubectl gave the plugin a terminal.
	Interactive bool
	// Cluster is the cluster the credential is for, with no credentials of
	// its own; nil when the kubeconfig does not set provideClusterInfo.
	Cluster *rest.Config
}

// ParseRequest reads the value of KUBERNETES_EXEC_INFO. An empty value (the
// plugin run by hand, or by an old kubectl) is a v1 request without
// cluster information.
func ParseRequest(env string) (Request, error) {
	if env == "" {
		return Request{APIVersion: v1}, nil
	}
	var head struct {
		metav1.TypeMeta `json:",inline"`
		Spec            struct {
			Interactive bool            `json:"interactive"`
			Cluster     json.RawMessage `json:"cluster"`
		} `json:"spec"`
	}
	if err := json.Unmarshal([]byte(env), &head); err != nil {
		return Request{}, fmt.Errorf("reading %s from kubectl: %w", EnvVar, err)
	}
	if head.Kind != kindExecCrd || (head.APIVersion != v1 && head.APIVersion != v1beta1) {
		return Request{}, fmt.Errorf("%s holds a %s %s; kip speaks %s and %s ExecCredential",
			EnvVar, head.APIVersion, head.Kind, v1, v1beta1)
	}
	req := Request{APIVersion: head.APIVersion, Interactive: head.Spec.Interactive}
	if len(head.Spec.Cluster) == 0 || string(head.Spec.Cluster) == "null" {
		return req, nil
	}
	_, cfg, err := exec.LoadExecCredential([]byte(env))
	if err != nil {
		return Request{}, fmt.Errorf("reading the cluster from %s: %w", EnvVar, err)
	}
	req.Cluster = cfg
	return req, nil
}

// Write writes status as the ExecCredential kubectl expects: the same
// apiVersion it asked in. v1 and v1beta1 share the status fields.
func Write(w io.Writer, apiVersion string, status *clientauthv1.ExecCredentialStatus) error {
	if apiVersion == "" {
		apiVersion = v1
	}
	cred := clientauthv1.ExecCredential{
		TypeMeta: metav1.TypeMeta{APIVersion: apiVersion, Kind: kindExecCrd},
		Status:   status,
	}
	b, err := json.Marshal(cred)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
