package whoami

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// Review sends a SelfSubjectReview with cfg's credentials.
func Review(ctx context.Context, cfg *rest.Config) (*authenticationv1.SelfSubjectReview, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	r, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("asking %s who you are: %w", cfg.Host, err)
	}
	// The typed client drops apiVersion and kind; JSON and YAML show them.
	r.APIVersion, r.Kind = authenticationv1.SchemeGroupVersion.String(), "SelfSubjectReview"
	return r, nil
}

// Print writes r as a table ("" or "text"), "json" or "yaml".
func Print(w io.Writer, r *authenticationv1.SelfSubjectReview, format string) error {
	switch format {
	case "", "text":
		return printTable(w, r.Status.UserInfo)
	case "json":
		b, err := json.MarshalIndent(r, "", "    ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case "yaml":
		b, err := yaml.Marshal(r)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	return fmt.Errorf("unknown output format %q: use text, json or yaml", format)
}

// printTable prints the attributes kubectl auth whoami prints, in its
// order, leaving out the empty ones.
func printTable(w io.Writer, u authenticationv1.UserInfo) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	_, _ = fmt.Fprintln(tw, "ATTRIBUTE\tVALUE")
	row := func(k, v string) { _, _ = fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	if u.Username != "" {
		row("Username", u.Username)
	}
	if u.UID != "" {
		row("UID", u.UID)
	}
	if len(u.Groups) > 0 {
		row("Groups", "["+strings.Join(u.Groups, " ")+"]")
	}
	for _, k := range slices.Sorted(maps.Keys(u.Extra)) {
		row("Extra: "+k, "["+strings.Join(u.Extra[k], " ")+"]")
	}
	return tw.Flush()
}
