package signer

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
)

// Annotations on the signer CA Secret. An operator asks for a rotation by
// setting RotateRequestedAnnotation to a new value, the time being the
// natural choice:
//
//	kubectl -n kip-system annotate --overwrite secret kip-signer-ca \
//	  kip.dev/rotate-requested-at="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
//
// The replica holding the Lease rotates and, in the same write, copies the
// value to RotateHandledAnnotation, so each request is honoured once, even
// when the leader dies half-way and another one takes over. Only a change
// of value counts; kip never parses it.
const (
	RotateRequestedAnnotation = "kip.dev/rotate-requested-at"
	RotateHandledAnnotation   = "kip.dev/rotate-request-handled"
	// RotatedByAnnotation and RotatedAtAnnotation record the replica that
	// last rotated the CA and when, for the operator.
	RotatedByAnnotation = "kip.dev/rotated-by"
	RotatedAtAnnotation = "kip.dev/rotated-at"
	// DistrustRequestedAnnotation asks for a rotation that trusts nothing
	// older: the signing CA and every retired one are dropped in the same
	// write, so every certificate kip issued before is refused on every
	// replica as soon as it reads the Secret. It is for a signer key that
	// may have leaked, since whoever holds it can sign certificates with
	// any issue time, which no revocation by time can catch. An ordinary
	// rotation keeps the old CA for its window instead. It is honoured once
	// per value, as RotateRequestedAnnotation is, and the value copied to
	// DistrustHandledAnnotation; `kip revoke signer-ca` sets it and waits.
	DistrustRequestedAnnotation = "kip.dev/distrust-requested-at"
	DistrustHandledAnnotation   = "kip.dev/distrust-request-handled"
)

// rotationRequested reports whether an operator asked for a rotation,
// plain or distrusting, that has not happened yet.
func rotationRequested(secret *corev1.Secret) bool {
	return pending(secret, RotateRequestedAnnotation, RotateHandledAnnotation) || distrustRequested(secret)
}

// distrustRequested reports whether an operator asked for a rotation that
// trusts nothing older, and it has not happened yet.
func distrustRequested(secret *corev1.Secret) bool {
	return pending(secret, DistrustRequestedAnnotation, DistrustHandledAnnotation)
}

// pending reports whether the request annotation has a value its handled
// annotation does not have yet.
func pending(secret *corev1.Secret, requested, handled string) bool {
	value := secret.Annotations[requested]
	return value != "" && value != secret.Annotations[handled]
}

// rotate writes a fresh signing CA into the Secret and retires the current
// one with its window. The write carries the resourceVersion it read, so
// two writers never overwrite each other, whether or not they both think
// they hold the Lease: the loser reads again and retries. With onlyIfDue, a
// retry that finds the rotation done by another replica does nothing.
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
			"newCA", s.ca.state.Load().signing.cert.Subject.CommonName,
			"requested", written.Annotations[RotateHandledAnnotation],
			"distrustRequested", written.Annotations[DistrustHandledAnnotation])
	}
	return nil
}

// rotateOnce is one read-modify-write; it returns the Secret it wrote, or
// nil when nothing was due. The CA is due when it has less than a fifth of
// its life left or an operator asked for a rotation.
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
	if onlyIfDue && !t.dueForRotation(now) && !rotationRequested(current) {
		return nil, s.apply(current)
	}
	fresh, err := generateSigningCA(now, s.ca.opts.CAValidity)
	if err != nil {
		return nil, err
	}
	// withSigning also drops retired CAs whose window has ended; a
	// distrust request keeps none at all.
	next := t.withSigning(fresh, now, s.ca.opts.MaxCertificateTTL)
	if distrustRequested(current) {
		next = newTrust(fresh, nil, now)
	}
	updated := current.DeepCopy()
	if err := writeSecret(updated, next); err != nil {
		return nil, err
	}
	markRotated(updated, s.ca.opts.LeaderElection.Identity, now)
	// A leader that lost the Lease while generating the key stops here;
	// one that loses it during the Update either wrote the whole rotation
	// or nothing, and the next leader finds the request still pending.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	written, err := secrets.Update(ctx, updated, metav1.UpdateOptions{})
	if err != nil {
		return nil, err
	}
	return written, s.apply(written)
}

// markRotated records who rotated and when, and that any pending request
// is honoured by this rotation.
func markRotated(secret *corev1.Secret, by string, now time.Time) {
	if secret.Annotations == nil {
		secret.Annotations = map[string]string{}
	}
	if requested := secret.Annotations[RotateRequestedAnnotation]; requested != "" {
		secret.Annotations[RotateHandledAnnotation] = requested
	}
	if requested := secret.Annotations[DistrustRequestedAnnotation]; requested != "" {
		secret.Annotations[DistrustHandledAnnotation] = requested
	}
	secret.Annotations[RotatedByAnnotation] = by
	secret.Annotations[RotatedAtAnnotation] = now.UTC().Format(time.RFC3339)
}

// maintain does nothing for a Secret: rotation is the Lease holder's job
// (see lead.go), and every replica follows the Secret through its watch.
func (s *secretSource) maintain(context.Context) {}
