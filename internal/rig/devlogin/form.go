package devlogin

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kip-proxy/kip/internal/rig/hydra"
)

// Limits on what the form accepts; generous for trying kip, small enough
// that an ID token stays a reasonable header.
const (
	maxNameLen = 64
	maxGroups  = 32
)

// loginContext is what the login step hands to the consent step through
// Hydra, which stores it with the flow.
type loginContext struct {
	Groups []string `json:"groups"`
}

// parseLoginForm turns the form's fields into the login Hydra is told of:
// the user name as subject, the groups in the context for consent.
func parseLoginForm(username, groups string) (hydra.LoginAcceptance, error) {
	subject, err := parseUsername(username)
	if err != nil {
		return hydra.LoginAcceptance{}, err
	}
	list, err := parseGroups(groups)
	if err != nil {
		return hydra.LoginAcceptance{}, err
	}
	return hydra.LoginAcceptance{Subject: subject, Context: loginContext{Groups: list}}, nil
}

// parseUsername checks the typed user name. Letters, digits and . _ @ : -
// cover every Kubernetes user name worth trying, including the system:
// ones kip must refuse.
func parseUsername(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", errors.New("enter a user name")
	case utf8.RuneCountInString(s) > maxNameLen:
		return "", fmt.Errorf("the user name is longer than %d characters", maxNameLen)
	}
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune("._@:-", r) {
			return "", fmt.Errorf("the user name may hold letters, digits and . _ @ : - only, not %q", r)
		}
	}
	return s, nil
}

// parseGroups splits a comma-separated list of groups, dropping blanks and
// repeats. Groups may hold spaces but no control characters, which would
// let a group name forge a line in a log.
func parseGroups(s string) ([]string, error) {
	groups := []string{}
	for g := range strings.SplitSeq(s, ",") {
		g = strings.TrimSpace(g)
		if g == "" || slices.Contains(groups, g) {
			continue
		}
		if utf8.RuneCountInString(g) > maxNameLen {
			return nil, fmt.Errorf("group %q is longer than %d characters", g, maxNameLen)
		}
		if strings.ContainsFunc(g, unicode.IsControl) || !utf8.ValidString(g) {
			return nil, fmt.Errorf("group %q holds a control character", g)
		}
		groups = append(groups, g)
	}
	if len(groups) > maxGroups {
		return nil, fmt.Errorf("more than %d groups", maxGroups)
	}
	return groups, nil
}

// idTokenClaims are the claims kip reads from the ID token. The e-mail is
// made up from the user name, since nobody here has a mailbox.
func idTokenClaims(subject string, groups []string, emailDomain string) map[string]any {
	email := subject
	if !strings.Contains(subject, "@") {
		email = subject + "@" + emailDomain
	}
	if groups == nil {
		groups = []string{}
	}
	return map[string]any{
		"email":          email,
		"email_verified": true,
		"name":           subject,
		"groups":         groups,
	}
}
