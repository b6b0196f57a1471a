package options

import (
	"fmt"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// ClientConfig is how a client command (kip sessions, kip revoke) reaches
// a cluster: a kubeconfig and a context, loaded as kubectl loads them.
type ClientConfig struct {
	Kubeconfig string
	Context    string
}

// AddFlags registers --kubeconfig, described by what it reaches, and
// --context on fs.
func (o *ClientConfig) AddFlags(fs *pflag.FlagSet, reaches string) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Kubeconfig to reach "+reaches+" with (default: $KUBECONFIG, else ~/.kube/config).")
	fs.StringVar(&o.Context, "context", o.Context, "Kubeconfig context to use (default: the current context).")
}

// loader is the kubeconfig with kubectl's loading rules.
func (o *ClientConfig) loader() clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.Kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: o.Context}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
}

// RESTConfig loads the kubeconfig, so an exec plugin such as kip login
// runs as it would for kubectl.
func (o *ClientConfig) RESTConfig() (*rest.Config, error) {
	cfg, err := o.loader().ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading the kubeconfig: %w", err)
	}
	return cfg, nil
}
