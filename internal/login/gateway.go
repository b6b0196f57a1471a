package login

import (
	"net/url"
	"strings"

	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/clusters"
)

// kipRoot is kip itself for a kubeconfig cluster that is one cluster of a
// kip gateway, https://kip.example.com/clusters/<name>: the credential
// exchange is kip's own and lives at its root, not at any cluster's. Since
// the cache key holds kip's address, every cluster of one gateway shares
// one entry: one sign-in and one certificate serve them all, as the
// certificate is valid for every cluster. Any other address is kip's as it
// is.
func kipRoot(cfg *rest.Config) *rest.Config {
	u, err := url.Parse(cfg.Host)
	if err != nil || u.Scheme == "" || u.RawQuery != "" || u.Fragment != "" {
		return cfg
	}
	_, after, err := clusters.Split(strings.TrimSuffix(u.EscapedPath(), "/"))
	if err != nil || after != "/" {
		return cfg
	}
	root := *u
	root.Path, root.RawPath = "", ""
	c := rest.CopyConfig(cfg)
	c.Host = root.String()
	return c
}
