package kubeconfig

import (
	"errors"
	"strings"

	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kip-proxy/kip/internal/clusters"
)

// ExecAPIVersion is the exec credential version kip login speaks.
const ExecAPIVersion = "client.authentication.k8s.io/v1"

// Config describes the kubeconfig to write.
type Config struct {
	// Server is kip's URL; CAData is the PEM CA of its serving certificate
	// (empty: the system's roots).
	Server string
	CAData []byte
	// Command and Args run the plugin: the kip executable and
	// "login", "oidc"|"static" and flags.
	Command string
	Args    []string

	ClusterName string
	UserName    string
	ContextName string

	// GatewayClusters, when set, are clusters of a kip gateway at Server:
	// each gets a cluster entry ClusterName-<name> at Server/clusters/<name>
	// and a context ContextName-<name>, all sharing the one user. The
	// first becomes the current context.
	GatewayClusters []string
}

// Build returns the kubeconfig. The exec section sets provideClusterInfo,
// so kip login learns kip's URL and CA from kubectl and the kubeconfig
// names them once, and interactiveMode IfAvailable, so kubectl lets the
// plugin sign in when there is a terminal and still runs it without one
// (the browser flow needs none).
func Build(c Config) (*clientcmdapi.Config, error) {
	if c.Server == "" || c.Command == "" {
		return nil, errors.New("a kubeconfig for kip needs the server URL and the kip command")
	}
	cfg := clientcmdapi.NewConfig()

	user := clientcmdapi.NewAuthInfo()
	user.Exec = &clientcmdapi.ExecConfig{
		APIVersion:         ExecAPIVersion,
		Command:            c.Command,
		Args:               c.Args,
		ProvideClusterInfo: true,
		InteractiveMode:    clientcmdapi.IfAvailableExecInteractiveMode,
		InstallHint:        "kip login is part of kip: install it (kubectl krew, a release archive or go install; see kip's README) and run kip kubeconfig again.",
	}
	cfg.AuthInfos[c.UserName] = user

	if len(c.GatewayClusters) == 0 {
		addContext(cfg, c, c.Server, c.ClusterName, c.ContextName)
		cfg.CurrentContext = c.ContextName
		return cfg, nil
	}
	root := strings.TrimSuffix(c.Server, "/")
	for _, name := range c.GatewayClusters {
		if err := clusters.ValidName(name); err != nil {
			return nil, err
		}
		addContext(cfg, c, root+clusters.PathPrefix+name, c.ClusterName+"-"+name, c.ContextName+"-"+name)
	}
	cfg.CurrentContext = c.ContextName + "-" + c.GatewayClusters[0]
	return cfg, nil
}

// addContext adds a cluster entry at server and a context joining it to
// the user.
func addContext(cfg *clientcmdapi.Config, c Config, server, clusterName, contextName string) {
	cluster := clientcmdapi.NewCluster()
	cluster.Server = server
	cluster.CertificateAuthorityData = c.CAData
	cfg.Clusters[clusterName] = cluster

	ctx := clientcmdapi.NewContext()
	ctx.Cluster, ctx.AuthInfo = clusterName, c.UserName
	cfg.Contexts[contextName] = ctx
}
