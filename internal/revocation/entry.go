package revocation

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Kind is what an entry names.
type Kind string

const (
	// KindUser names a username, exactly as kip would impersonate it.
	KindUser Kind = "user"
	// KindUID names a user's UID.
	KindUID Kind = "uid"
	// KindGroup names a group: every member's credentials are covered.
	KindGroup Kind = "group"
	// KindCredential names one credential by its
	// authentication.kubernetes.io/credential-id, as kube-apiserver and
	// kip write it in audit logs: X509SHA256=… for a certificate, JTI=…
	// for an ID token with a jti claim.
	KindCredential Kind = "credential"
)

// Kinds are every kind, in the order kip checks them.
var Kinds = []Kind{KindUser, KindUID, KindGroup, KindCredential}

// maxValue bounds a name an entry may hold; Kubernetes names and
// credential IDs are far shorter.
const maxValue = 1024

// Entry is one revocation.
type Entry struct {
	Kind  Kind   `json:"kind"`
	Value string `json:"value"`
	// Before is the time before which the subject's credentials were
	// issued: those are refused. In the future, it refuses fresh ones too.
	Before time.Time `json:"before"`
	// Expires is when the entry stops applying: by then no credential it
	// covers can still be valid.
	Expires time.Time `json:"expires"`
	// Reason and By are for people reading the list: why, and who wrote
	// the entry.
	Reason string `json:"reason,omitempty"`
	By     string `json:"by,omitempty"`
	// Created is when the entry was last written.
	Created time.Time `json:"created"`
}

// Key is where e lives in the ConfigMap: one data key per subject, so
// that writing one entry never conflicts with another's content, and a
// subject revoked again replaces its entry.
func (e Entry) Key() string { return Key(e.Kind, e.Value) }

// Key is the ConfigMap data key of kind and value. The value is hashed,
// since a username may hold characters a data key may not.
func Key(kind Kind, value string) string {
	sum := sha256.Sum256([]byte(value))
	return string(kind) + "." + hex.EncodeToString(sum[:12])
}

// ValidateSubject reports what makes kind and value name no subject.
func ValidateSubject(kind Kind, value string) error {
	if !knownKind(kind) {
		return fmt.Errorf("kind %q is not one of user, uid, group, credential", kind)
	}
	if value == "" || len(value) > maxValue || !utf8.ValidString(value) {
		return fmt.Errorf("the %s must be between 1 and %d bytes of UTF-8", kind, maxValue)
	}
	if kind == KindCredential && !strings.Contains(value, "=") {
		return fmt.Errorf("credential %q is not a credential-id such as X509SHA256=… or JTI=…", value)
	}
	return nil
}

// Validate reports what makes e unusable.
func (e Entry) Validate() error {
	if err := ValidateSubject(e.Kind, e.Value); err != nil {
		return err
	}
	if e.Before.IsZero() || e.Expires.IsZero() {
		return errors.New("before and expires are both required")
	}
	if !e.Expires.After(e.Before) {
		return fmt.Errorf("expires (%s) must be after before (%s)", e.Expires.Format(time.RFC3339), e.Before.Format(time.RFC3339))
	}
	return nil
}

func knownKind(k Kind) bool {
	for _, known := range Kinds {
		if k == known {
			return true
		}
	}
	return false
}

// InForce reports whether e still applies at now.
func (e Entry) InForce(now time.Time) bool { return now.Before(e.Expires) }

// Covers reports whether a credential issued at issued is refused by e.
// A credential whose issue time kip cannot read (a webhook token) is
// covered for as long as the entry is in force: kip cannot tell it was
// issued after the entry's time.
func (e Entry) Covers(issued time.Time) bool {
	return issued.IsZero() || issued.Before(e.Before)
}

// encode is e as a ConfigMap value.
func (e Entry) encode() (string, error) {
	b, err := json.Marshal(e)
	return string(b), err
}

// decode reads the entry at key. An entry whose subject can be read but
// whose times cannot is still enforced, as refusing the subject for good:
// kip cannot tell which credentials it was meant to cover, and refusing
// is the side to err on. Only an entry whose subject is unreadable is
// dropped, since it could name anyone.
func decode(key, value string) (Entry, error) {
	var subject struct {
		Kind  Kind   `json:"kind"`
		Value string `json:"value"`
	}
	if err := json.Unmarshal([]byte(value), &subject); err != nil || ValidateSubject(subject.Kind, subject.Value) != nil {
		return Entry{}, fmt.Errorf("entry %s names no subject kip knows, so it is ignored: %q", key, short(value))
	}
	var e Entry
	err := json.Unmarshal([]byte(value), &e)
	if err == nil {
		err = e.Validate()
	}
	if err != nil {
		e = Entry{Kind: subject.Kind, Value: subject.Value, Before: forever, Expires: forever}
		return e, fmt.Errorf("entry %s is malformed, so its %s %q is refused until it is fixed: %w", key, e.Kind, e.Value, err)
	}
	return e, nil
}

// short is the start of a value, for a message.
func short(value string) string {
	if len(value) > 200 {
		return value[:200] + "…"
	}
	return value
}

// forever is later than any credential's issue time or any clock.
var forever = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
