package signer

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// The Secret that holds kip's signer CA, shared by every replica:
//
//	type: kubernetes.io/tls
//	metadata.labels: app.kubernetes.io/managed-by: kip
//	data:
//	  tls.crt:          the signing CA certificate, PEM
//	  tls.key:          its private key, PEM
//	  retired-cas.json: optional; CAs that no longer sign but are still
//	                    trusted, with the end of their window:
//	                    [{"certificate": "-----BEGIN CERTIFICATE-----…",
//	                      "trustUntil": "2026-07-02T10:00:00Z"}]
//
// Retired CAs keep no private key: they only ever verify. The Secret is the
// whole truth in this mode: removing a retired CA from it (to revoke it)
// takes effect on every replica.
const (
	secretRetiredKey = "retired-cas.json"
	managedByLabel   = "app.kubernetes.io/managed-by"
	managedByValue   = "kip"
)

// retiredRecord is one entry of retired-cas.json.
type retiredRecord struct {
	Certificate string    `json:"certificate"`
	TrustUntil  time.Time `json:"trustUntil"`
}

// NewFromSecret returns a CA kept in Secret namespace/name. When the Secret
// is absent it generates a CA and creates it; when another replica created
// it first, it uses theirs. Run then watches that one Secret.
func NewFromSecret(ctx context.Context, client kubernetes.Interface, namespace, name string, opts Options) (*CA, error) {
	opts, err := opts.complete()
	if err != nil {
		return nil, err
	}
	src := &secretSource{client: client, namespace: namespace, name: name, changed: make(chan struct{}, 1)}
	c := &CA{name: "kip-signer-ca::secret::" + namespace + "/" + name, opts: opts, src: src}
	src.ca = c
	secret, err := src.getOrCreate(ctx)
	if err != nil {
		return nil, err
	}
	if err := src.apply(secret); err != nil {
		return nil, fmt.Errorf("the signer CA Secret %s/%s cannot be used; fix or delete it: %w", namespace, name, err)
	}
	return c, nil
}

// secretSource follows the Secret holding the signer CA.
type secretSource struct {
	ca        *CA
	client    kubernetes.Interface
	namespace string
	name      string
	// changed wakes the leader's loop when the Secret changed, so an
	// operator's rotation request is honoured at once.
	changed chan struct{}
	// leading is true while this replica holds the Lease.
	leading atomic.Bool
}

func (s *secretSource) String() string { return s.namespace + "/" + s.name }

// getOrCreate reads the Secret, creating it with a fresh CA if absent.
func (s *secretSource) getOrCreate(ctx context.Context) (*corev1.Secret, error) {
	secrets := s.client.CoreV1().Secrets(s.namespace)
	secret, err := secrets.Get(ctx, s.name, metav1.GetOptions{})
	if err == nil {
		return secret, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("reading the signer CA Secret %s: %w", s, err)
	}
	fresh, err := generateSigningCA(s.ca.opts.Clock.Now(), s.ca.opts.CAValidity)
	if err != nil {
		return nil, err
	}
	secret = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: s.namespace, Name: s.name}}
	if err := writeSecret(secret, newTrust(fresh, nil, s.ca.opts.Clock.Now())); err != nil {
		return nil, err
	}
	created, err := secrets.Create(ctx, secret, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// Another replica won the race: everyone must sign with one CA.
		klog.InfoS("Another replica created the signer CA Secret first; using it", "secret", s.String())
		created, err = secrets.Get(ctx, s.name, metav1.GetOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("creating the signer CA Secret %s: %w", s, err)
	}
	klog.InfoS("Using the signer CA Secret", "secret", s.String())
	return created, nil
}

// apply makes secret's CAs the current state, all or nothing.
func (s *secretSource) apply(secret *corev1.Secret) error {
	now := s.ca.opts.Clock.Now()
	t, err := trustFromSecret(secret, now)
	if err != nil {
		return err
	}
	s.ca.update(func(*trust) *trust { return t })
	return nil
}

// trustFromSecret parses the layout above. Any part that does not parse
// refuses the whole Secret, so a damaged Secret never half-applies.
func trustFromSecret(secret *corev1.Secret, now time.Time) (*trust, error) {
	if secret.Type != corev1.SecretTypeTLS {
		return nil, fmt.Errorf("the Secret has type %q, want %q", secret.Type, corev1.SecretTypeTLS)
	}
	signing, err := parseSigningCA(secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey], now)
	if err != nil {
		return nil, fmt.Errorf("%s and %s: %w", corev1.TLSCertKey, corev1.TLSPrivateKeyKey, err)
	}
	retired, err := parseRetired(secret.Data[secretRetiredKey])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", secretRetiredKey, err)
	}
	return newTrust(signing, retired, now), nil
}

func parseRetired(data []byte) ([]retiredCA, error) {
	if len(data) == 0 {
		return nil, nil
	}
	var records []retiredRecord
	if err := json.Unmarshal(data, &records); err != nil {
		return nil, fmt.Errorf("not a JSON list of retired CAs: %w", err)
	}
	retired := make([]retiredCA, 0, len(records))
	for i, r := range records {
		cert, err := parseOneCertPEM([]byte(r.Certificate))
		if err != nil {
			return nil, fmt.Errorf("retired CA #%d: %w", i, err)
		}
		if !cert.BasicConstraintsValid || !cert.IsCA {
			return nil, fmt.Errorf("retired CA #%d (%q) is not a CA", i, cert.Subject.CommonName)
		}
		if r.TrustUntil.IsZero() {
			return nil, fmt.Errorf("retired CA #%d (%q) has no trustUntil", i, cert.Subject.CommonName)
		}
		retired = append(retired, retiredCA{cert: cert, certPEM: encodeCertPEM(cert.Raw), trustUntil: r.TrustUntil})
	}
	return retired, nil
}

// writeSecret stores t into secret in the layout above, keeping whatever
// else the Secret holds (labels and annotations of other tools).
func writeSecret(secret *corev1.Secret, t *trust) error {
	records := make([]retiredRecord, 0, len(t.retired))
	for _, r := range t.retired {
		records = append(records, retiredRecord{Certificate: string(r.certPEM), TrustUntil: r.trustUntil.UTC()})
	}
	retired, err := json.Marshal(records)
	if err != nil {
		return fmt.Errorf("encoding the retired CAs: %w", err)
	}
	secret.Type = corev1.SecretTypeTLS
	if secret.Labels == nil {
		secret.Labels = map[string]string{}
	}
	secret.Labels[managedByLabel] = managedByValue
	if secret.Data == nil {
		secret.Data = map[string][]byte{}
	}
	secret.Data[corev1.TLSCertKey] = t.signing.certPEM
	secret.Data[corev1.TLSPrivateKeyKey] = t.signing.keyPEM
	if len(records) == 0 {
		delete(secret.Data, secretRetiredKey)
	} else {
		secret.Data[secretRetiredKey] = retired
	}
	return nil
}

func (s *secretSource) sync(ctx context.Context) error {
	secret, err := s.client.CoreV1().Secrets(s.namespace).Get(ctx, s.name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading the signer CA Secret %s: %w", s, err)
	}
	if err := s.apply(secret); err != nil {
		return fmt.Errorf("the signer CA Secret %s cannot be used, keeping the previous CA: %w", s, err)
	}
	return nil
}

// onSecret applies a Secret the watch delivered, keeping the last good
// state when it cannot be used.
func (s *secretSource) onSecret(obj any) {
	secret, ok := obj.(*corev1.Secret)
	if !ok || secret.Namespace != s.namespace || secret.Name != s.name {
		return
	}
	if err := s.apply(secret); err != nil {
		klog.ErrorS(err, "Keeping the previous signer CA: the Secret cannot be used", "secret", s.String())
	}
	select {
	case s.changed <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// onDelete only logs: the CA in memory keeps working, and recreating the
// Secret with a fresh CA here would split replicas between two CAs.
func (s *secretSource) onDelete(any) {
	klog.InfoS("Warning: the signer CA Secret was deleted; kip keeps the CA it holds, but a restarted replica will create a new one", "secret", s.String())
}
