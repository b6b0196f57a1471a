package signer

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
)

// rotate writes a fresh signing CA into the Secret and retires the current
// one with its window. The write carries the resourceVersion it read, so
// two replicas never overwrite each other: the loser reads again and
// retries. With onlyIfDue, a retry that finds the CA already rotated by
// another replica does nothing.
func (s *secretSource) rotate(ctx context.Context, onlyIfDue bool) error {
	var written *corev1.Secret
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var err error
		written, err = s.rotateOnce(ctx, onlyIfDue)
		return err
	})
	if err != nil {
		return fmt.Errorf("rotating the signer CA in Secret %s: %w", s, err)
	}
	if written != nil {
		klog.InfoS("Rotated kip's signer CA", "secret", s.String(),
			"newCA", s.ca.state.Load().signing.cert.Subject.CommonName)
	}
	return nil
}

// rotateOnce is one read-modify-write; it returns the Secret it wrote, or
// nil when nothing was due.
func (s *secretSource) rotateOnce(ctx context.Context, onlyIfDue bool) (*corev1.Secret, error) {
	secrets := s.client.CoreV1().Secrets(s.namespace)
	current, err := secrets.Get(ctx, s.name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	now := s.ca.opts.Clock.Now()
	t, err := trustFromSecret(current, now)
	if err != nil {
		// Never overwrite what kip cannot read: it may be the only copy
		// of a CA that other replicas still sign with.
		return nil, fmt.Errorf("the Secret cannot be read, so it is left alone; fix it first: %w", err)
	}
	if onlyIfDue && !t.dueForRotation(now) {
		return nil, s.apply(current)
	}
	fresh, err := generateSigningCA(now, s.ca.opts.CAValidity)
	if err != nil {
		return nil, err
	}
	// withSigning also drops retired CAs whose window has ended.
	next := t.withSigning(fresh, now, s.ca.opts.MaxCertificateTTL)
	updated := current.DeepCopy()
	if err := writeSecret(updated, next); err != nil {
		return nil, err
	}
	written, err := secrets.Update(ctx, updated, metav1.UpdateOptions{})
	if err != nil {
		return nil, err
	}
	return written, s.apply(written)
}

// maintain rotates the CA when it has less than a fifth of its life left.
// Every replica checks; the resourceVersion makes sure only one rotates.
func (s *secretSource) maintain(ctx context.Context) {
	if !s.ca.state.Load().dueForRotation(s.ca.opts.Clock.Now()) {
		return
	}
	if err := s.rotate(ctx, true); err != nil {
		klog.ErrorS(err, "Automatic rotation of kip's signer CA failed; will retry", "secret", s.String())
	}
}
