package clusters

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Cluster is one upstream kip fronts: its name and kip's connection to it.
type Cluster struct {
	Name string
	// Config is the server, its CA and kip's own credentials for it.
	Config *rest.Config
	// Origin says where the entry came from, for log lines: a file.
	Origin string
	// Policy says who may reach the cluster at all, from the entry's
	// kip.dev/access extension; it allows every user when there is none.
	Policy *Policy
	// digest is the SHA-256 of the entry as read, so that a change of
	// credentials under the same name is a change.
	digest [sha256.Size]byte
}

// Refusal is an entry kip did not register, and why. It never affects the
// other entries.
type Refusal struct {
	// Name is the cluster the entry would have been, if one could be read.
	Name   string
	Origin string
	Reason string
}

// Same reports whether c and o are the same entry: same name, same bytes.
// A cluster that is not the same must get a new connection.
func (c Cluster) Same(o Cluster) bool { return c.Name == o.Name && c.digest == o.digest }

func (r Refusal) String() string { return fmt.Sprintf("%s: %s", r.Origin, r.Reason) }

// kubeconfigExtensions are stripped from a file name to give the cluster's
// name, so that prod and prod.kubeconfig both name cluster prod.
var kubeconfigExtensions = []string{".kubeconfig", ".yaml", ".yml"}

// LoadDir reads every kubeconfig in dir, one cluster per file, named after
// the file. Files whose names start with a dot are skipped: they are a
// mounted Secret's or ConfigMap's own bookkeeping (..data, ..2026_...).
// An entry that cannot be used is refused on its own; two files that name
// the same cluster are both refused, as kip cannot tell which one is
// meant. Only a directory that cannot be listed is an error.
func LoadDir(dir string) ([]Cluster, []Refusal, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the cluster directory: %w", err)
	}
	byName := map[string][]Cluster{}
	var refused []Refusal
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		c, err := loadFile(path)
		if err != nil {
			refused = append(refused, Refusal{Name: c.Name, Origin: path, Reason: err.Error()})
			continue
		}
		byName[c.Name] = append(byName[c.Name], c)
	}
	clusters, refused := unique(byName, refused)
	return clusters, refused, nil
}

// unique keeps the names only one entry claims and refuses the others.
func unique(byName map[string][]Cluster, refused []Refusal) ([]Cluster, []Refusal) {
	var clusters []Cluster
	for name, cs := range byName {
		if len(cs) == 1 {
			clusters = append(clusters, cs[0])
			continue
		}
		origins := make([]string, len(cs))
		for i, c := range cs {
			origins[i] = c.Origin
		}
		sort.Strings(origins)
		for _, o := range origins {
			refused = append(refused, Refusal{Name: name, Origin: o,
				Reason: fmt.Sprintf("cluster %q is named by %d entries (%s); remove all but one", name, len(cs), strings.Join(origins, ", "))})
		}
	}
	sort.Slice(clusters, func(i, j int) bool { return clusters[i].Name < clusters[j].Name })
	sort.Slice(refused, func(i, j int) bool { return refused[i].Origin < refused[j].Origin })
	return clusters, refused
}

// loadFile reads one cluster's kubeconfig. The returned Cluster carries
// the name even when the file is refused, for the refusal's log line.
func loadFile(path string) (Cluster, error) {
	c := Cluster{Name: nameOf(filepath.Base(path)), Origin: path}
	if err := ValidName(c.Name); err != nil {
		return c, fmt.Errorf("%w; name the file after the cluster, e.g. prod or prod.kubeconfig", err)
	}
	info, err := os.Stat(path)
	if err != nil {
		return c, err
	}
	if info.IsDir() {
		return c, errors.New("is a directory, not a kubeconfig")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	c.digest = sha256.Sum256(data)
	kc, err := clientcmd.Load(data)
	if err != nil {
		return c, fmt.Errorf("not a kubeconfig: %w", err)
	}
	if err := resolvePaths(kc, path); err != nil {
		return c, err
	}
	return c, c.configure(kc)
}

// configure reads the client config and the access policy of the
// kubeconfig's current context.
func (c *Cluster) configure(kc *clientcmdapi.Config) error {
	var err error
	if c.Config, err = restConfig(kc); err != nil {
		return err
	}
	c.Policy, err = policyOf(kc)
	return err
}

// resolvePaths makes file references in kc (certificate-authority,
// tokenFile, client-certificate) relative to the kubeconfig's folder, as
// kubectl reads them, not to kip's working directory.
func resolvePaths(kc *clientcmdapi.Config, path string) error {
	for _, c := range kc.Clusters {
		c.LocationOfOrigin = path
	}
	for _, u := range kc.AuthInfos {
		u.LocationOfOrigin = path
	}
	return clientcmd.ResolveLocalPaths(kc)
}

func nameOf(file string) string {
	for _, ext := range kubeconfigExtensions {
		if base, ok := strings.CutSuffix(file, ext); ok {
			return base
		}
	}
	return file
}

// restConfig is the kubeconfig's current context as a client config, once
// it passes checkSafe.
func restConfig(kc *clientcmdapi.Config) (*rest.Config, error) {
	if kc.CurrentContext == "" && len(kc.Contexts) == 1 {
		for name := range kc.Contexts {
			kc.CurrentContext = name
		}
	}
	if err := checkSafe(kc); err != nil {
		return nil, err
	}
	cfg, err := clientcmd.NewDefaultClientConfig(*kc, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("unusable kubeconfig: %w", err)
	}
	return cfg, nil
}

// checkSafe refuses what kip must not do with a cluster's credentials:
// run a program the entry names (exec, auth-provider), which would let
// whoever writes the entry run code as kip, or send its impersonation
// credentials to a server it has not verified (plain HTTP,
// insecure-skip-tls-verify).
func checkSafe(kc *clientcmdapi.Config) error {
	ctx, ok := kc.Contexts[kc.CurrentContext]
	if !ok {
		return fmt.Errorf("the kubeconfig has no current context (it has %d contexts); set current-context", len(kc.Contexts))
	}
	cluster, ok := kc.Clusters[ctx.Cluster]
	if !ok {
		return fmt.Errorf("context %q names cluster %q, which the kubeconfig does not define", kc.CurrentContext, ctx.Cluster)
	}
	if err := checkServer(cluster); err != nil {
		return err
	}
	user, ok := kc.AuthInfos[ctx.AuthInfo]
	if !ok {
		return fmt.Errorf("context %q names user %q, which the kubeconfig does not define; kip needs its own credentials for the cluster", kc.CurrentContext, ctx.AuthInfo)
	}
	switch {
	case user.Exec != nil:
		return errors.New("the user runs an exec plugin, which kip refuses to run; give kip a token or a client certificate for the cluster")
	case user.AuthProvider != nil:
		return errors.New("the user names an auth-provider, which kip refuses to run; give kip a token or a client certificate for the cluster")
	case user.Token == "" && user.TokenFile == "" && len(user.ClientCertificateData) == 0 && user.ClientCertificate == "":
		return errors.New("the user has no token and no client certificate; kip needs its own credentials for the cluster")
	}
	return nil
}

func checkServer(cluster *clientcmdapi.Cluster) error {
	u, err := url.Parse(cluster.Server)
	switch {
	case cluster.Server == "":
		return errors.New("the cluster has no server")
	case err != nil:
		return fmt.Errorf("the server %q is not a URL: %w", cluster.Server, err)
	case u.Scheme != "https" || u.Host == "":
		return fmt.Errorf("the server %q is not an https URL; kip sends its impersonation credentials only over TLS", cluster.Server)
	case cluster.InsecureSkipTLSVerify:
		return errors.New("insecure-skip-tls-verify is set; kip sends its impersonation credentials only to a server it verifies: give the cluster's CA (certificate-authority-data)")
	}
	return nil
}
