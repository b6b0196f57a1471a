package tokenwebhook

import (
	"context"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// TestReviewThroughItsKubeconfig asks the webhook as kip does, through the
// kubeconfig it writes: the token vouched for is that user, any other is
// not authenticated, and both reviews are counted.
func TestReviewThroughItsKubeconfig(t *testing.T) {
	w, err := Start(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	alice := authenticationv1.UserInfo{Username: "alice", UID: "alice-uid", Groups: []string{"devs"}}
	w.Vouch("alice-token", alice)
	data, err := w.Kubeconfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ContentConfig = rest.ContentConfig{NegotiatedSerializer: scheme.Codecs.WithoutConversion()}
	client, err := rest.UnversionedRESTClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	review := func(token string) authenticationv1.TokenReviewStatus {
		t.Helper()
		var out authenticationv1.TokenReview
		in := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}
		if err := client.Post().Body(in).Do(context.Background()).Into(&out); err != nil {
			t.Fatal(err)
		}
		return out.Status
	}
	if got := review("alice-token"); !got.Authenticated || got.User.Username != "alice" || got.User.UID != "alice-uid" {
		t.Errorf("alice-token: %+v", got)
	}
	if got := review("someone-else"); got.Authenticated || got.User.Username != "" {
		t.Errorf("an unknown token: %+v", got)
	}
	if w.Reviews() != 2 || w.ReviewsOf("alice-token") != 1 || w.ReviewsOf("someone-else") != 1 {
		t.Errorf("reviews %d, of alice-token %d, of someone-else %d", w.Reviews(), w.ReviewsOf("alice-token"), w.ReviewsOf("someone-else"))
	}
}
