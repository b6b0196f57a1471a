package options

import (
	"fmt"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Whoami is the option set of `kip whoami`.
type Whoami struct {
	Kubeconfig string
	Context    string
	Output     string
}

// NewWhoami returns the defaults.
func NewWhoami() *Whoami { return &Whoami{} }

// AddFlags registers every flag on fs.
func (o *Whoami) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Kubeconfig to use (default: $KUBECONFIG, else ~/.kube/config).")
	fs.StringVar(&o.Context, "context", o.Context, "Context to use (default: the current context).")
	fs.StringVarP(&o.Output, "output", "o", o.Output, "Output format: text (default), json or yaml.")
}

// Validate reports every invalid option.
func (o *Whoami) Validate() error {
	switch o.Output {
	case "", "text", "json", "yaml":
		return nil
	}
	return fmt.Errorf("--output must be text, json or yaml, not %q", o.Output)
}

// RESTConfig loads the kubeconfig with kubectl's rules, so an exec plugin
// such as kip login runs as it would for kubectl.
func (o *Whoami) RESTConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.Kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: o.Context}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading the kubeconfig: %w", err)
	}
	return cfg, nil
}
