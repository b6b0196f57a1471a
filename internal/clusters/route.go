package clusters

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// PathPrefix is where every cluster's API lives: /clusters/<name>/...
const PathPrefix = "/clusters/"

// ErrNotRouted is a path outside PathPrefix; the gateway answers it 404.
var ErrNotRouted = errors.New("the path names no cluster: kip serves each cluster at " + PathPrefix + "<name>/")

// Split reads the cluster a request is addressed to from its escaped path
// (url.URL.EscapedPath, never the decoded Path) and returns the rest of
// that path, byte for byte, as the cluster must receive it. The name is
// everything up to the next '/', and it must be a DNS label, so that %2e,
// %2F, dots and empty segments are refused instead of decoded: the first
// segment alone decides the cluster. A bare /clusters/<name> is the
// cluster's root, "/".
func Split(escapedPath string) (name, rest string, err error) {
	after, ok := strings.CutPrefix(escapedPath, PathPrefix)
	if !ok {
		return "", "", ErrNotRouted
	}
	name, rest = after, "/"
	if i := strings.IndexByte(after, '/'); i >= 0 {
		name, rest = after[:i], after[i:]
	}
	if err := ValidName(name); err != nil {
		return "", "", err
	}
	return name, rest, nil
}

// ValidName says why name cannot name a cluster, or returns nil. Names are
// DNS labels (RFC 1123): they stand in a path segment, in a metric label
// and in a kubeconfig's context name, and need no escaping in any of them.
func ValidName(name string) error {
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		return fmt.Errorf("%q is not a cluster name: %s", name, strings.Join(errs, "; "))
	}
	return nil
}

// Rewrite points u, a request's URL, at the path the cluster must receive,
// and returns the cluster's name. The rest of the path keeps its escaping:
// RawPath carries it as it came, Path its decoded form.
func Rewrite(u *url.URL) (string, error) {
	name, rest, err := Split(u.EscapedPath())
	if err != nil {
		return "", err
	}
	decoded, err := url.PathUnescape(rest)
	if err != nil {
		return "", fmt.Errorf("the path after %s%s is not validly escaped: %w", PathPrefix, name, err)
	}
	u.Path, u.RawPath = decoded, rest
	if u.EscapedPath() != rest {
		// url.URL drops a RawPath that is not a valid encoding of Path;
		// nothing here should reach a cluster other than as sent.
		return "", fmt.Errorf("the path after %s%s cannot be forwarded unchanged", PathPrefix, name)
	}
	return name, nil
}
