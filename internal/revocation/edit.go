package revocation

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// Add writes e to the list, or widens the subject's entry already there to
// cover e too (the later before, the later expiry), and drops the entries
// that have expired. It creates the ConfigMap when there is none, which
// needs the right to create ConfigMaps in its namespace; the Helm chart
// creates it, so revoking needs only update. It returns the entry as
// written.
func (s Source) Add(ctx context.Context, e Entry, now time.Time) (Entry, error) {
	if err := e.Validate(); err != nil {
		return Entry{}, err
	}
	var written Entry
	err := s.edit(ctx, func(data map[string]string) error {
		written = e
		if old, err := decode(e.Key(), data[e.Key()]); err == nil && old.InForce(now) {
			written.Before = later(old.Before, e.Before)
			written.Expires = later(old.Expires, e.Expires)
		}
		value, err := written.encode()
		if err != nil {
			return err
		}
		data[e.Key()] = value
		prune(data, now)
		return nil
	})
	return written, err
}

// Remove deletes the subject's entry, lifting its revocation: credentials
// it refused are accepted again if they are still valid. It reports
// whether there was one.
func (s Source) Remove(ctx context.Context, kind Kind, value string, now time.Time) (bool, error) {
	found := false
	err := s.edit(ctx, func(data map[string]string) error {
		if _, found = data[Key(kind, value)]; !found {
			return errUnchanged
		}
		delete(data, Key(kind, value))
		prune(data, now)
		return nil
	})
	return found, err
}

// Entries reads the list, sorted by kind and value, with the problems of
// entries kip cannot read as written. No ConfigMap is an empty list.
func (s Source) Entries(ctx context.Context) ([]Entry, []error, error) {
	cm, err := s.Client.CoreV1().ConfigMaps(s.Namespace).Get(ctx, s.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, s.explain(err)
	}
	var entries []Entry
	var problems []error
	for key, value := range cm.Data {
		e, err := decode(key, value)
		if err != nil {
			problems = append(problems, err)
		}
		if e.Kind != "" {
			entries = append(entries, e)
		}
	}
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].Kind != entries[j].Kind {
			return entries[i].Kind < entries[j].Kind
		}
		return entries[i].Value < entries[j].Value
	})
	return entries, problems, nil
}

// edit applies change to the ConfigMap's data and writes it back,
// starting over when another writer got there first.
func (s Source) edit(ctx context.Context, change func(map[string]string) error) error {
	cms := s.Client.CoreV1().ConfigMaps(s.Namespace)
	// Another writer may have created the ConfigMap or changed it since
	// it was read: read it again and start over.
	raced := func(err error) bool { return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) }
	err := retry.OnError(retry.DefaultRetry, raced, func() error {
		cm, err := cms.Get(ctx, s.Name, metav1.GetOptions{})
		absent := apierrors.IsNotFound(err)
		if absent {
			cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name}}
		} else if err != nil {
			return err
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		if err := change(cm.Data); err != nil {
			return err
		}
		if absent {
			_, err = cms.Create(ctx, cm, metav1.CreateOptions{})
			return err
		}
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		return err
	})
	if errors.Is(err, errUnchanged) {
		return nil
	}
	return s.explain(err)
}

// errUnchanged ends an edit that has nothing to write.
var errUnchanged = errors.New("nothing to change")

// explain says what a refusal from the API means for whoever revokes.
func (s Source) explain(err error) error {
	switch {
	case err == nil:
		return nil
	case apierrors.IsForbidden(err):
		return fmt.Errorf("the revocation list %s is not yours to change or read (ask for the kip-revoker Role in its namespace): %w", s, err)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("the revocation list %s does not exist: %w", s, err)
	}
	return fmt.Errorf("the revocation list %s: %w", s, err)
}

// prune drops the entries that no longer apply, so the list holds only
// what some replica must still enforce. Entries kip cannot read stay for
// a person to fix.
func prune(data map[string]string, now time.Time) {
	for key, value := range data {
		if e, err := decode(key, value); err == nil && !e.InForce(now) {
			delete(data, key)
		}
	}
}
