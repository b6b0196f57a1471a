package kubeconfig

import (
	"errors"

	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
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
	cluster := clientcmdapi.NewCluster()
	cluster.Server = c.Server
	cluster.CertificateAuthorityData = c.CAData
	cfg.Clusters[c.ClusterName] = cluster

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

	ctx := clientcmdapi.NewContext()
	ctx.Cluster, ctx.AuthInfo = c.ClusterName, c.UserName
	cfg.Contexts[c.ContextName] = ctx
	cfg.CurrentContext = c.ContextName
	return cfg, nil
}
