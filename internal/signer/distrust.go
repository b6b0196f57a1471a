package signer

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// Distrusted is what a distrust request did.
type Distrusted struct {
	// Request is the value of DistrustRequestedAnnotation that was honoured.
	Request string
	// Old are the CAs that were trusted before and no longer are.
	Old []*x509.Certificate
	// New is the CA that signs from now on.
	New *x509.Certificate
	// By is the replica that rotated.
	By string
}

// RequestDistrust asks the kip replica that holds the signer Lease to
// replace the CA in Secret namespace/name and trust nothing older
// (DistrustRequestedAnnotation), with the caller's client, so the
// cluster's RBAC decides who may. It waits, until ctx ends, for the
// request to be honoured. Every replica then refuses the old certificates
// as soon as it reads the Secret.
func RequestDistrust(ctx context.Context, client kubernetes.Interface, namespace, name string) (Distrusted, error) {
	secrets := client.CoreV1().Secrets(namespace)
	before, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return Distrusted{}, fmt.Errorf("reading the signer CA Secret %s/%s: %w", namespace, name, err)
	}
	old, err := trustedCAs(before)
	if err != nil {
		return Distrusted{}, fmt.Errorf("the signer CA Secret %s/%s: %w", namespace, name, err)
	}
	request := time.Now().UTC().Format(time.RFC3339Nano)
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{DistrustRequestedAnnotation: request}}})
	if err != nil {
		return Distrusted{}, err
	}
	if _, err := secrets.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return Distrusted{}, fmt.Errorf("asking for the distrust on Secret %s/%s: %w", namespace, name, err)
	}
	var after *corev1.Secret
	waited := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		s, err := secrets.Get(ctx, name, metav1.GetOptions{})
		after = s
		return err == nil && s.Annotations[DistrustHandledAnnotation] == request, nil
	})
	if waited != nil {
		return Distrusted{}, fmt.Errorf("no kip replica honoured the request %s=%s on Secret %s/%s in time: is one running with --signer-ca-secret=%s/%s, and does one hold its Lease? The request stays; the next leader honours it",
			DistrustRequestedAnnotation, request, namespace, name, namespace, name)
	}
	signing, err := parseOneCertPEM(after.Data[corev1.TLSCertKey])
	if err != nil {
		return Distrusted{}, fmt.Errorf("the rotated Secret %s/%s: %w", namespace, name, err)
	}
	return Distrusted{Request: request, Old: old, New: signing, By: after.Annotations[RotatedByAnnotation]}, nil
}

// trustedCAs are the CAs a Secret makes kip trust: the signing one and the
// retired ones, windows regardless.
func trustedCAs(secret *corev1.Secret) ([]*x509.Certificate, error) {
	signing, err := parseOneCertPEM(secret.Data[corev1.TLSCertKey])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", corev1.TLSCertKey, err)
	}
	retired, err := parseRetired(secret.Data[secretRetiredKey])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", secretRetiredKey, err)
	}
	cas := []*x509.Certificate{signing}
	for _, r := range retired {
		cas = append(cas, r.cert)
	}
	return cas, nil
}
