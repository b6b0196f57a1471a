package options

import (
	"fmt"
	"os"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kip-proxy/kip/internal/clusters"
	"github.com/kip-proxy/kip/internal/server"
)

// Clusters are the options that make kip a gateway to many clusters.
type Clusters struct {
	Dir             string
	SecretNamespace string
	SecretLabel     string
}

// NewClusters returns the defaults: one cluster, no gateway.
func NewClusters() *Clusters {
	return &Clusters{SecretLabel: clusters.DefaultSecretLabel}
}

// AddFlags registers the gateway's flags.
func (o *Clusters) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Dir, "clusters-dir", o.Dir,
		"Front many clusters: a directory of kubeconfigs, one per cluster, named after it (prod or prod.kubeconfig), each with the server, its CA and kip's credentials for it. Watched: clusters come and go without a restart. Each is served at /clusters/<name>/.")
	fs.StringVar(&o.SecretNamespace, "clusters-secret-namespace", o.SecretNamespace,
		"Front many clusters: the namespace of the home cluster (--kubeconfig or in-cluster) whose Secrets labelled --clusters-secret-label each register a cluster (key kubeconfig). Watched.")
	fs.StringVar(&o.SecretLabel, "clusters-secret-label", o.SecretLabel,
		"The label that marks a cluster Secret; its value is the cluster's name.")
}

// Enabled reports whether kip fronts many clusters.
func (o *Clusters) Enabled() bool { return o.Dir != "" || o.SecretNamespace != "" }

// Validate refuses a directory kip cannot read, a namespace or label that
// cannot be one.
func (o *Clusters) Validate() []error {
	var errs []error
	if o.Dir != "" {
		if info, err := os.Stat(o.Dir); err != nil {
			errs = append(errs, fmt.Errorf("--clusters-dir: %w", err))
		} else if !info.IsDir() {
			errs = append(errs, fmt.Errorf("--clusters-dir %s is a file; give the directory that holds one kubeconfig per cluster", o.Dir))
		}
	}
	if o.SecretNamespace != "" {
		for _, msg := range validation.IsDNS1123Label(o.SecretNamespace) {
			errs = append(errs, fmt.Errorf("--clusters-secret-namespace %q is not a namespace: %s", o.SecretNamespace, msg))
		}
	}
	for _, msg := range validation.IsQualifiedName(o.SecretLabel) {
		errs = append(errs, fmt.Errorf("--clusters-secret-label %q is not a label key: %s", o.SecretLabel, msg))
	}
	return errs
}

func (o *Clusters) config() server.ClustersConfig {
	return server.ClustersConfig{Dir: o.Dir, SecretNamespace: o.SecretNamespace, SecretLabel: o.SecretLabel}
}
