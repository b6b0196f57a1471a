package options

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/spf13/pflag"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"

	"github.com/kip-proxy/kip/internal/kubeconfig"
	"github.com/kip-proxy/kip/internal/login"
	"github.com/kip-proxy/kip/internal/login/oidcflow"
)

// Kubeconfig is the option set of `kip kubeconfig`. The login flags are
// those of `kip login oidc` and `kip login static`, validated by the same
// rules, and only the ones the user set are written into the exec section,
// so kip login's defaults apply to the rest.
type Kubeconfig struct {
	Server      string
	CAFile      string
	Output      string
	KipCommand  string
	ClusterName string
	UserName    string
	ContextName string
	// AllClusters writes a context for each cluster of a kip gateway the
	// user may reach; ClusterName and ContextName become prefixes.
	AllClusters bool

	LoginCommon
	OIDCFlags
	StaticFlags

	// loginFlags are the flags passed through to kip login.
	loginFlags *pflag.FlagSet
}

// NewKubeconfig returns the defaults.
func NewKubeconfig() *Kubeconfig {
	o := &Kubeconfig{
		ClusterName: "kip",
		UserName:    "kip",
		ContextName: "kip",
		LoginCommon: newLoginCommon(),
		OIDCFlags:   NewLoginOIDC().OIDCFlags,
	}
	exe, _ := os.Executable() // empty when unknown: Validate asks for --kip-command
	o.KipCommand = defaultKipCommand(os.Args[0], exe)
	return o
}

// AddFlags registers every flag on fs.
func (o *Kubeconfig) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Server, "server", o.Server, "kip's URL, e.g. https://kip.example.com:8443.")
	fs.StringVar(&o.CAFile, "ca-file", o.CAFile, "PEM file of the CA of kip's serving certificate, embedded in the kubeconfig (default: the system's roots).")
	fs.StringVarP(&o.Output, "output", "o", o.Output, "File to write (mode 0600) instead of stdout.")
	fs.StringVar(&o.KipCommand, "kip-command", o.KipCommand, "The kip executable kubectl runs for credentials; kubectl itself runs `kubectl kip login`, for users who installed kip with krew.")
	fs.StringVar(&o.ClusterName, "cluster-name", o.ClusterName, "Name of the cluster entry.")
	fs.StringVar(&o.UserName, "user-name", o.UserName, "Name of the user entry.")
	fs.StringVar(&o.ContextName, "context-name", o.ContextName, "Name of the context, which becomes the current one.")
	fs.BoolVar(&o.AllClusters, "all-clusters", o.AllClusters,
		"For a kip gateway: sign in now, ask kip which clusters you may reach, and write one context <context-name>-<cluster> per cluster (server <server>/clusters/<cluster>), all sharing one user, so one sign-in serves them all. The first becomes the current context.")

	o.loginFlags = pflag.NewFlagSet("login", pflag.ContinueOnError)
	o.OIDCFlags.AddFlags(o.loginFlags)
	o.StaticFlags.AddFlags(o.loginFlags)
	o.LoginCommon.AddFlags(o.loginFlags)
	o.loginFlags.VisitAll(func(f *pflag.Flag) { f.Usage = "kip login: " + f.Usage })
	fs.AddFlagSet(o.loginFlags)
}

// kind says which kip login the flags ask for.
func (o *Kubeconfig) kind() string {
	oidc := o.Issuer != "" || o.ClientID != ""
	static := o.Token != "" || o.TokenEnv != ""
	switch {
	case oidc && static:
		return "both"
	case oidc:
		return "oidc"
	case static:
		return "static"
	}
	return ""
}

// Validate reports every invalid option at once.
func (o *Kubeconfig) Validate() error {
	var errs []error
	if o.Server == "" {
		errs = append(errs, errors.New("--server is required"))
	} else if err := oidcflow.CheckURL(o.Server, false); err != nil {
		errs = append(errs, fmt.Errorf("--server: %w", err))
	} else if o.AllClusters {
		errs = appendIfErr(errs, checkGatewayRoot(o.Server))
	}
	if o.CAFile != "" {
		errs = appendIfErr(errs, checkFile("--ca-file", o.CAFile))
	}
	if o.KipCommand == "" {
		errs = append(errs, errors.New("--kip-command is required: the path of this executable is unknown"))
	}
	for flag, v := range map[string]string{"--cluster-name": o.ClusterName, "--user-name": o.UserName, "--context-name": o.ContextName} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s must not be empty", flag))
		}
	}
	errs = append(errs, o.LoginCommon.validate()...)
	switch o.kind() {
	case "oidc":
		errs = append(errs, o.OIDCFlags.validate()...)
		errs = append(errs, o.onlyFor("oidc")...)
	case "static":
		errs = append(errs, o.StaticFlags.validate()...)
		errs = append(errs, o.onlyFor("static")...)
	case "both":
		errs = append(errs, errors.New("--issuer/--client-id (kip login oidc) cannot be combined with --token/--token-env (kip login static)"))
	default:
		errs = append(errs, errors.New("say how users log in: --issuer and --client-id (OIDC), or --token-env (a webhook token)"))
	}
	return utilerrors.NewAggregate(errs)
}

// checkGatewayRoot accepts kip's own URL only: each cluster's path,
// /clusters/<name>, is added to it, and the clusters are listed and the
// credential exchanged at its root.
func checkGatewayRoot(server string) error {
	u, err := url.Parse(server)
	if err != nil {
		return fmt.Errorf("--server: %w", err)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("--all-clusters needs kip's own URL, such as %s://%s, not %q: each cluster's path is added to it", u.Scheme, u.Host, server)
	}
	return nil
}

// onlyFor refuses the flags of the other kind of login.
func (o *Kubeconfig) onlyFor(kind string) []error {
	foreign := pflag.NewFlagSet("", pflag.ContinueOnError)
	if kind == "static" {
		(&OIDCFlags{}).AddFlags(foreign)
	} else {
		(&StaticFlags{}).AddFlags(foreign)
	}
	var errs []error
	foreign.VisitAll(func(f *pflag.Flag) {
		if o.loginFlags != nil && o.loginFlags.Changed(f.Name) {
			errs = append(errs, fmt.Errorf("--%s is not a flag of kip login %s", f.Name, kind))
		}
	})
	return errs
}

// Config builds the kubeconfig description.
func (o *Kubeconfig) Config() (kubeconfig.Config, error) {
	var ca []byte
	if o.CAFile != "" {
		var err error
		if ca, err = os.ReadFile(o.CAFile); err != nil {
			return kubeconfig.Config{}, fmt.Errorf("--ca-file: %w", err)
		}
	}
	args, err := o.loginArgs()
	if err != nil {
		return kubeconfig.Config{}, err
	}
	if runsThroughKubectl(o.KipCommand) {
		args = append([]string{"kip"}, args...)
	}
	return kubeconfig.Config{
		Server:      o.Server,
		CAData:      ca,
		Command:     o.KipCommand,
		Args:        args,
		ClusterName: o.ClusterName,
		UserName:    o.UserName,
		ContextName: o.ContextName,
	}, nil
}

// isPathFlag says whether a login flag holds a file name. Those are made
// absolute because kubectl runs the plugin from whatever directory the user
// is in.
func isPathFlag(name string) bool {
	return name == "issuer-ca-file" || name == "cache-dir"
}

// loginArgs are the kip login arguments: the subcommand and every login
// flag the user set, in flag order.
func (o *Kubeconfig) loginArgs() ([]string, error) {
	args := []string{"login", o.kind()}
	var err error
	o.loginFlags.VisitAll(func(f *pflag.Flag) {
		if !f.Changed || err != nil {
			return
		}
		v := f.Value.String()
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			v = strings.Join(sv.GetSlice(), ",")
		}
		if isPathFlag(f.Name) {
			v, err = filepath.Abs(v)
		}
		args = append(args, "--"+f.Name+"="+v)
	})
	return args, err
}

// KipConfig is kip's own address, where --all-clusters signs in and lists
// the clusters. It is the address kip login derives from each cluster's
// entry, so the sign-in made here is the one cached for kubectl.
func (o *Kubeconfig) KipConfig() (*rest.Config, error) {
	cfg := &rest.Config{Host: strings.TrimSuffix(o.Server, "/")}
	if o.CAFile != "" {
		ca, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		cfg.CAData = ca
	}
	return cfg, nil
}

// Plugin is the kip login the kubeconfig's user runs, built from the same
// flags with the same defaults, to sign in from kip kubeconfig itself.
func (o *Kubeconfig) Plugin(stderr io.Writer) (*login.Plugin, error) {
	switch o.kind() {
	case "oidc":
		return (&LoginOIDC{LoginCommon: o.LoginCommon, OIDCFlags: o.OIDCFlags}).Plugin(stderr, "")
	case "static":
		return (&LoginStatic{LoginCommon: o.LoginCommon, StaticFlags: o.StaticFlags}).Plugin(stderr, "", nil)
	}
	return nil, errors.New("say how users log in: --issuer and --client-id (OIDC), or --token-env (a webhook token)")
}

// Render validates the options and returns the kubeconfig they describe,
// serialized: what `kip kubeconfig` writes and what `kip dev` hands out.
func (o *Kubeconfig) Render() ([]byte, error) {
	if o.AllClusters {
		return nil, errors.New("--all-clusters needs the list of clusters: kip kubeconfig asks kip for it")
	}
	return o.render(nil)
}

// RenderGateway is Render for --all-clusters: a context for each of
// clusters, the names kip listed.
func (o *Kubeconfig) RenderGateway(clusters []string) ([]byte, error) {
	if !o.AllClusters || len(clusters) == 0 {
		return nil, errors.New("a kubeconfig for a kip gateway needs --all-clusters and at least one cluster")
	}
	return o.render(clusters)
}

func (o *Kubeconfig) render(clusters []string) ([]byte, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	c, err := o.Config()
	if err != nil {
		return nil, err
	}
	c.GatewayClusters = clusters
	kc, err := kubeconfig.Build(c)
	if err != nil {
		return nil, err
	}
	return clientcmd.Write(*kc)
}
