package headers

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"k8s.io/apiserver/pkg/authentication/user"
)

// SafeValue says why s cannot travel upstream, or returns nil: kip hands
// every part of an identity to the API server as an Impersonate-* header
// value, and a control character there would either fail the request in
// Go's transport or, percent-encoded in an extra key, reach the upstream's
// authorizer and audit log.
func SafeValue(what, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("the %s %q is not valid UTF-8", what, s)
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return fmt.Errorf("the %s %q contains control characters", what, s)
	}
	return nil
}

// CheckUser applies SafeValue to every part of u: name, UID,
// groups, extra keys and values. kip refuses such an identity when it
// authenticates it, so it never accepts one it could not sign or forward.
func CheckUser(u user.Info) error {
	if err := SafeValue("user name", u.GetName()); err != nil {
		return err
	}
	if err := SafeValue("UID", u.GetUID()); err != nil {
		return err
	}
	for _, g := range u.GetGroups() {
		if err := SafeValue("group", g); err != nil {
			return err
		}
	}
	for k, values := range u.GetExtra() {
		if err := SafeValue("extra key", k); err != nil {
			return err
		}
		for _, v := range values {
			if err := SafeValue("value of extra "+k, v); err != nil {
				return err
			}
		}
	}
	return nil
}
