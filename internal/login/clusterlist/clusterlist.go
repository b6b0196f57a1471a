package clusterlist

import (
	"context"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	clientauthv1 "k8s.io/client-go/pkg/apis/clientauthentication/v1"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/clusters"
	"github.com/kip-proxy/kip/internal/login/exchange"
	loginv1alpha1 "github.com/kip-proxy/kip/pkg/apis/login/v1alpha1"
)

// Get returns the names of the clusters that the holder of cred (what kip
// login hands kubectl: a client certificate or a token) may reach at the
// kip gateway kip points at, sorted and checked.
func Get(ctx context.Context, kip *rest.Config, cred *clientauthv1.ExecCredentialStatus) ([]string, error) {
	c, err := client(kip, cred)
	if err != nil {
		return nil, err
	}
	var list loginv1alpha1.ClusterList
	err = c.Get().Resource(loginv1alpha1.ClustersResource).Do(ctx).Into(&list)
	switch {
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("kip at %s lists no clusters: it is not a gateway (kip serve --clusters-dir or --clusters-secret-namespace); leave out --all-clusters", kip.Host)
	case apierrors.IsUnauthorized(err):
		return nil, fmt.Errorf("kip at %s did not accept your credential to list clusters: %w", kip.Host, err)
	case err != nil:
		return nil, fmt.Errorf("listing the clusters of kip at %s: %w", kip.Host, err)
	}
	names := make([]string, 0, len(list.Items))
	for _, item := range list.Items {
		if err := clusters.ValidName(item.Name); err != nil {
			return nil, fmt.Errorf("kip at %s listed a cluster that cannot be used: %w", kip.Host, err)
		}
		names = append(names, item.Name)
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// client is a REST client of kip's login.kip.dev/v1alpha1 API that
// presents cred and nothing else from kip's configuration.
func client(kip *rest.Config, cred *clientauthv1.ExecCredentialStatus) (*rest.RESTClient, error) {
	if cred == nil {
		return nil, fmt.Errorf("no credential to list the clusters of kip at %s", kip.Host)
	}
	c := rest.AnonymousClientConfig(kip)
	c.BearerToken = cred.Token
	c.CertData, c.KeyData = []byte(cred.ClientCertificateData), []byte(cred.ClientKeyData)
	if err := exchange.SpeakLoginGroup(c); err != nil {
		return nil, err
	}
	if c.UserAgent == "" {
		c.UserAgent = "kip-kubeconfig"
	}
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("configuring the client of kip at %s: %w", kip.Host, err)
	}
	return rc, nil
}
