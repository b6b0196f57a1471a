package sessionsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"text/tabwriter"
	"time"

	"github.com/kip-proxy/kip/internal/sessions"
	sessionsv1alpha1 "github.com/kip-proxy/kip/pkg/apis/sessions/v1alpha1"
)

// Source is where kip sessions reads recordings: kip's API, or a
// recording directory read directly.
type Source interface {
	// List returns the sessions f selects in namespace (every namespace
	// when empty), newest first.
	List(ctx context.Context, namespace string, f sessions.Filter) ([]sessionsv1alpha1.Session, error)
	// Recording returns the recording of session id of namespace.
	Recording(ctx context.Context, namespace, id string) (io.ReadCloser, error)
}

// Remote reads from kip's API.
type Remote struct{ Client *Client }

// List implements Source.
func (s Remote) List(ctx context.Context, namespace string, f sessions.Filter) ([]sessionsv1alpha1.Session, error) {
	list, err := s.Client.List(ctx, namespace, f)
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// Recording implements Source.
func (s Remote) Recording(ctx context.Context, namespace, id string) (io.ReadCloser, error) {
	return s.Client.Recording(ctx, namespace, id)
}

// Local reads a Store directly, such as the recording directory; whoever
// can read the files needs no RBAC.
type Local struct{ Store sessions.Store }

// List implements Source.
func (s Local) List(ctx context.Context, namespace string, f sessions.Filter) ([]sessionsv1alpha1.Session, error) {
	f.Namespace = namespace
	found, err := s.Store.List(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]sessionsv1alpha1.Session, 0, len(found))
	for _, sum := range found {
		out = append(out, Object(sum))
	}
	return out, nil
}

// Recording implements Source. The namespace, when given, must be the
// session's.
func (s Local) Recording(ctx context.Context, namespace, id string) (io.ReadCloser, error) {
	rc, sum, err := s.Store.Open(ctx, id)
	if errors.Is(err, sessions.ErrNotFound) {
		return nil, fmt.Errorf("no recording of session %q in the directory", id)
	}
	if err != nil {
		return nil, err
	}
	if namespace != "" && sum.Namespace != namespace {
		_ = rc.Close()
		return nil, fmt.Errorf("session %q ran in namespace %q, not %q", id, sum.Namespace, namespace)
	}
	return rc, nil
}

// PrintList writes sessions as a table ("" or "text") or as a JSON
// SessionList ("json").
func PrintList(w io.Writer, items []sessionsv1alpha1.Session, format string) error {
	switch format {
	case "json":
		list := sessionsv1alpha1.SessionList{Items: items}
		list.APIVersion, list.Kind = sessionsv1alpha1.SchemeGroupVersion.String(), "SessionList"
		if list.Items == nil {
			list.Items = []sessionsv1alpha1.Session{}
		}
		b, err := json.MarshalIndent(list, "", "    ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case "", "text":
		return printTable(w, items)
	}
	return fmt.Errorf("unknown output format %q: use text or json", format)
}

func printTable(w io.Writer, items []sessionsv1alpha1.Session) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "ID\tUSER\tCLUSTER\tNAMESPACE/POD\tSUBRESOURCE\tSTART\tDURATION\tSEALED")
	for _, s := range items {
		duration := "-"
		if s.Status.End != nil {
			duration = s.Status.End.Sub(s.Status.Start.Time).Round(time.Second).String()
		}
		cluster := s.Spec.Cluster
		if cluster == "" {
			cluster = "-"
		}
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s/%s\t%s\t%s\t%s\t%s\n",
			cell(s.Name), cell(s.Spec.User), cell(cluster), cell(s.Namespace), cell(s.Spec.Pod), cell(s.Spec.Subresource),
			s.Status.Start.UTC().Format(time.RFC3339), duration, yesNo(s.Status.Sealed))
	}
	return tw.Flush()
}

// unprintable matches what a table cell must not carry: a user name is
// the identity provider's, and control characters in it would let it
// rewrite the terminal showing the list.
var unprintable = regexp.MustCompile(`[\x00-\x1f\x7f\t]`)

func cell(s string) string {
	if s == "" {
		return "-"
	}
	return unprintable.ReplaceAllStringFunc(s, func(c string) string { return fmt.Sprintf("\\x%02x", c[0]) })
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
