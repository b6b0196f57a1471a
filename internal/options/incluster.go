package options

import (
	"errors"
	"fmt"
	"net"
	"os"

	"k8s.io/client-go/rest"
)

// inClusterConfig is rest.InClusterConfig with the token and CA files
// taken from the options, so that a test (or a pod that projects its token
// elsewhere) can point kip at other files.
//
// Only BearerTokenFile is set, never BearerToken: client-go then reads the
// file at start and again about once a minute, in every transport built
// from this config (kip's HTTP/2 proxy transport, its HTTP/1.1 upgrade
// transport and its API client alike), so a token the kubelet rotated is
// picked up without a restart. CAFile is reloaded by client-go too.
func (o *Serve) inClusterConfig() (*rest.Config, error) {
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, errors.New("not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are unset")
	}
	for flag, path := range map[string]string{"--in-cluster-token-file": o.InClusterTokenFile, "--in-cluster-ca-file": o.InClusterCAFile} {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("%s: %w", flag, err)
		}
	}
	return &rest.Config{
		Host:            "https://" + net.JoinHostPort(host, port),
		BearerTokenFile: o.InClusterTokenFile,
		TLSClientConfig: rest.TLSClientConfig{CAFile: o.InClusterCAFile},
	}, nil
}
