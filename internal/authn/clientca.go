package authn

import (
	"context"
	"fmt"

	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/kubernetes"
)

// The ConfigMap in which kube-apiserver publishes the CA of the client
// certificates it accepts.
const (
	clusterCANamespace = "kube-system"
	clusterCAName      = "extension-apiserver-authentication"
	clusterCAKey       = "client-ca-file"
)

// ClientCAs is the set of CAs whose client certificates kip trusts for the
// identity in their subject. kip's own signer CA is not one of them: its
// certificates carry more than the subject, and are read by the signer's
// own authenticator.
type ClientCAs struct {
	// File is a PEM bundle on disk, reloaded when it changes. Empty means none.
	File string
	// Cluster, when set, adds the upstream's own client CA from ConfigMap
	// kube-system/extension-apiserver-authentication, watched and reloaded.
	Cluster kubernetes.Interface
}

// Provider returns one provider for the union of all configured CAs. The
// generic server runs its controllers and reloads the TLS handshake's CA
// hints from it. With no CA at all, no certificate is ever accepted.
func (c ClientCAs) Provider() (dynamiccertificates.CAContentProvider, error) {
	providers, err := c.Providers()
	if err != nil {
		return nil, err
	}
	return UnionOf(providers...), nil
}

// caUnion is the union of several CA sources that can still be read source
// by source: the certificate cache compares each source's bundle, which
// costs nothing while it is unchanged, instead of joining them all into a
// fresh copy for every request.
type caUnion struct {
	dynamiccertificates.CAContentProvider
	parts []dynamiccertificates.CAContentProvider
}

var (
	_ dynamiccertificates.CAContentProvider = (*caUnion)(nil)
	_ dynamiccertificates.ControllerRunner  = (*caUnion)(nil)
)

// UnionOf returns one provider for the union of parts. Like
// k8s.io/apiserver's own union, it runs the parts' controllers when the
// generic server runs it: a source whose controller never ran never loads.
// It is a pointer, so that a union can be told apart from any other by
// comparison: kip checks that the generic server kept the one it built.
func UnionOf(parts ...dynamiccertificates.CAContentProvider) dynamiccertificates.CAContentProvider {
	return &caUnion{CAContentProvider: dynamiccertificates.NewUnionCAContentProvider(parts...), parts: parts}
}

// RunOnce loads every part that has a controller.
func (u *caUnion) RunOnce(ctx context.Context) error {
	return u.CAContentProvider.(dynamiccertificates.ControllerRunner).RunOnce(ctx)
}

// Run runs every part's controller until ctx ends.
func (u *caUnion) Run(ctx context.Context, workers int) {
	u.CAContentProvider.(dynamiccertificates.ControllerRunner).Run(ctx, workers)
}

// sourcesOf returns the sources a provider is made of.
func sourcesOf(p dynamiccertificates.CAContentProvider) []dynamiccertificates.CAContentProvider {
	if u, ok := p.(*caUnion); ok {
		return u.parts
	}
	return []dynamiccertificates.CAContentProvider{p}
}

// Providers returns one provider per configured CA source, so that each
// can be checked on its own: until a source has loaded, its bundle is
// empty and the certificates it signed are refused.
func (c ClientCAs) Providers() ([]dynamiccertificates.CAContentProvider, error) {
	var providers []dynamiccertificates.CAContentProvider
	if c.File != "" {
		p, err := dynamiccertificates.NewDynamicCAContentFromFile("client-ca-file", c.File)
		if err != nil {
			return nil, fmt.Errorf("reading --client-ca-file %q: %w", c.File, err)
		}
		providers = append(providers, p)
	}
	if c.Cluster != nil {
		p, err := dynamiccertificates.NewDynamicCAFromConfigMapController(
			"cluster-client-ca", clusterCANamespace, clusterCAName, clusterCAKey, c.Cluster)
		if err != nil {
			return nil, fmt.Errorf("watching the cluster's client CA: %w", err)
		}
		providers = append(providers, p)
	}
	return providers, nil
}
