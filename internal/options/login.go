package options

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"

	"github.com/kip-proxy/kip/internal/login"
	"github.com/kip-proxy/kip/internal/login/oidcflow"
)

// DefaultScopes are requested besides openid: offline_access for a refresh
// token, email and groups for the claims kip usually maps to a user.
const DefaultScopes = "offline_access,email,groups"

// LoginCommon holds the flags every `kip login` shares.
type LoginCommon struct {
	Mode     string
	CacheDir string
}

// KipFallback names kip when kubectl passes no cluster information.
type KipFallback struct {
	KipServer string
	KipCAFile string
}

// OIDCFlags are the identity provider flags of `kip login oidc`, also
// accepted by `kip kubeconfig`.
type OIDCFlags struct {
	Issuer         string
	ClientID       string
	ClientSecret   string
	Scopes         []string
	IssuerCAFile   string
	Flow           string
	SkipBrowser    bool
	BrowserCommand string
	ListenAddress  string
}

// StaticFlags are the flags of `kip login static`.
type StaticFlags struct {
	Token    string
	TokenEnv string
}

// LoginOIDC is the option set of `kip login oidc`.
type LoginOIDC struct {
	LoginCommon
	KipFallback
	OIDCFlags
}

// LoginStatic is the option set of `kip login static`.
type LoginStatic struct {
	LoginCommon
	KipFallback
	StaticFlags
}

// NewLoginOIDC returns the defaults.
func NewLoginOIDC() *LoginOIDC {
	return &LoginOIDC{
		LoginCommon: newLoginCommon(),
		OIDCFlags:   OIDCFlags{Scopes: strings.Split(DefaultScopes, ","), Flow: string(oidcflow.FlowBrowser)},
	}
}

// NewLoginStatic returns the defaults.
func NewLoginStatic() *LoginStatic {
	return &LoginStatic{LoginCommon: newLoginCommon()}
}

func newLoginCommon() LoginCommon {
	c := LoginCommon{Mode: string(login.ModeCertificate)}
	// Without a user cache directory, Validate asks for --cache-dir.
	if dir, err := os.UserCacheDir(); err == nil {
		c.CacheDir = filepath.Join(dir, "kip")
	}
	return c
}

// AddFlags registers every flag on fs.
func (o *LoginOIDC) AddFlags(fs *pflag.FlagSet) {
	o.OIDCFlags.AddFlags(fs)
	o.LoginCommon.AddFlags(fs)
	o.KipFallback.AddFlags(fs)
}

// AddFlags registers every flag on fs.
func (o *LoginStatic) AddFlags(fs *pflag.FlagSet) {
	o.StaticFlags.AddFlags(fs)
	o.LoginCommon.AddFlags(fs)
	o.KipFallback.AddFlags(fs)
}

// AddFlags registers the shared flags.
func (o *LoginCommon) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Mode, "mode", o.Mode,
		"certificate: exchange the token at kip for a short-lived client certificate whose key never leaves this machine; token: hand the token itself to kubectl.")
	fs.StringVar(&o.CacheDir, "cache-dir", o.CacheDir, "Directory of the login cache (tokens and certificates, private to this user).")
}

// AddFlags registers the fallback flags.
func (o *KipFallback) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.KipServer, "kip-server", o.KipServer,
		"kip's URL, used only when kubectl passes no cluster information (provideClusterInfo: true in the kubeconfig's exec section).")
	fs.StringVar(&o.KipCAFile, "kip-ca-file", o.KipCAFile, "PEM file of the CA of kip's serving certificate, used with --kip-server.")
}

// AddFlags registers the identity provider flags.
func (o *OIDCFlags) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Issuer, "issuer", o.Issuer, "Issuer URL of the OIDC provider.")
	fs.StringVar(&o.ClientID, "client-id", o.ClientID, "OAuth client ID registered at the provider.")
	fs.StringVar(&o.ClientSecret, "client-secret", o.ClientSecret, "OAuth client secret, for providers that require one from public clients.")
	fs.StringSliceVar(&o.Scopes, "scopes", o.Scopes, "Scopes to request besides openid, comma-separated.")
	fs.StringVar(&o.IssuerCAFile, "issuer-ca-file", o.IssuerCAFile, "PEM file of the CAs to trust for the provider instead of the system's.")
	fs.StringVar(&o.Flow, "flow", o.Flow, "How to sign in: browser (authorization code with PKCE) or device (a URL and a code, for machines without a browser).")
	fs.BoolVar(&o.SkipBrowser, "skip-browser", o.SkipBrowser, "Print the sign-in URL on stderr instead of opening a browser.")
	fs.StringVar(&o.BrowserCommand, "browser-command", o.BrowserCommand, "Program that opens the sign-in URL, given as its one argument (default: $BROWSER, else open on macOS, the URL handler on Windows, xdg-open elsewhere).")
	fs.StringVar(&o.ListenAddress, "listen-address", o.ListenAddress,
		"Loopback host:port of the browser flow's callback; the redirect URI is http://HOST:PORT/callback (default 127.0.0.1 on a random port).")
}

// AddFlags registers the static token flags.
func (o *StaticFlags) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Token, "token", o.Token, "The token. It shows in process listings; prefer --token-env.")
	fs.StringVar(&o.TokenEnv, "token-env", o.TokenEnv, "Name of the environment variable that holds the token.")
}

// Validate reports every invalid option at once.
func (o *LoginOIDC) Validate() error {
	errs := o.OIDCFlags.validate()
	errs = append(errs, o.LoginCommon.validate()...)
	errs = append(errs, o.KipFallback.validate(o.Mode)...)
	return utilerrors.NewAggregate(errs)
}

// Validate reports every invalid option at once.
func (o *LoginStatic) Validate() error {
	errs := o.StaticFlags.validate()
	errs = append(errs, o.LoginCommon.validate()...)
	errs = append(errs, o.KipFallback.validate(o.Mode)...)
	return utilerrors.NewAggregate(errs)
}

func (o *LoginCommon) validate() []error {
	var errs []error
	if o.Mode != string(login.ModeCertificate) && o.Mode != string(login.ModeToken) {
		errs = append(errs, fmt.Errorf("--mode must be certificate or token, not %q", o.Mode))
	}
	if o.CacheDir == "" {
		errs = append(errs, errors.New("--cache-dir is required: this system has no user cache directory"))
	}
	return errs
}

func (o *KipFallback) validate(mode string) []error {
	var errs []error
	if o.KipServer != "" {
		if mode == string(login.ModeToken) {
			errs = append(errs, errors.New("--kip-server is only used with --mode certificate"))
		}
		if err := oidcflow.CheckURL(o.KipServer, false); err != nil {
			errs = append(errs, fmt.Errorf("--kip-server: %w", err))
		}
	}
	if o.KipCAFile != "" {
		if o.KipServer == "" {
			errs = append(errs, errors.New("--kip-ca-file needs --kip-server"))
		}
		errs = appendIfErr(errs, checkFile("--kip-ca-file", o.KipCAFile))
	}
	return errs
}

func (o *OIDCFlags) validate() []error {
	var errs []error
	if o.Issuer == "" {
		errs = append(errs, errors.New("--issuer is required"))
	} else if err := oidcflow.CheckURL(o.Issuer, true); err != nil {
		errs = append(errs, fmt.Errorf("--issuer: %w", err))
	}
	if o.ClientID == "" {
		errs = append(errs, errors.New("--client-id is required"))
	}
	for _, s := range o.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\n") {
			errs = append(errs, fmt.Errorf("--scopes: %q is not a scope", s))
		}
	}
	if o.IssuerCAFile != "" {
		errs = appendIfErr(errs, checkFile("--issuer-ca-file", o.IssuerCAFile))
	}
	switch oidcflow.Flow(o.Flow) {
	case oidcflow.FlowBrowser:
		if o.ListenAddress != "" {
			errs = appendIfErr(errs, checkLoopbackAddress(o.ListenAddress))
		}
	case oidcflow.FlowDevice:
		if o.ListenAddress != "" {
			errs = append(errs, errors.New("--listen-address is only used with --flow browser"))
		}
	default:
		errs = append(errs, fmt.Errorf("--flow must be browser or device, not %q", o.Flow))
	}
	if o.SkipBrowser && o.BrowserCommand != "" {
		errs = append(errs, errors.New("--browser-command cannot be combined with --skip-browser"))
	}
	return errs
}

func (o *StaticFlags) validate() []error {
	switch {
	case o.Token != "" && o.TokenEnv != "":
		return []error{errors.New("--token and --token-env cannot be combined")}
	case o.Token == "" && o.TokenEnv == "":
		return []error{errors.New("--token or --token-env is required")}
	}
	return nil
}

// checkLoopbackAddress keeps the callback, which receives the
// authorization code, off every interface but the loopback one.
func checkLoopbackAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen-address %q must be host:port: %w", addr, err)
	}
	if !oidcflow.IsLoopbackHost(host) {
		return fmt.Errorf("--listen-address %q must be on the loopback interface (127.0.0.1, [::1] or localhost)", addr)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("--listen-address %q: %w", addr, err)
	}
	return nil
}

func checkFile(flag, path string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	return nil
}

func appendIfErr(errs []error, err error) []error {
	if err != nil {
		return append(errs, err)
	}
	return errs
}

// Plugin builds the exec credential plugin. execInfo is the value of
// KUBERNETES_EXEC_INFO.
func (o *LoginOIDC) Plugin(stderr io.Writer, execInfo string) (*login.Plugin, error) {
	cfg, err := o.pluginConfig(stderr, execInfo)
	if err != nil {
		return nil, err
	}
	httpClient, err := issuerHTTPClient(o.IssuerCAFile)
	if err != nil {
		return nil, err
	}
	return login.NewOIDC(cfg, oidcflow.Config{
		Issuer:         o.Issuer,
		ClientID:       o.ClientID,
		ClientSecret:   o.ClientSecret,
		Scopes:         o.Scopes,
		HTTPClient:     httpClient,
		Flow:           oidcflow.Flow(o.Flow),
		ListenAddress:  o.ListenAddress,
		SkipBrowser:    o.SkipBrowser,
		BrowserCommand: o.BrowserCommand,
		Stderr:         stderr,
	}), nil
}

// Plugin builds the exec credential plugin. lookupEnv reads --token-env's
// variable; nil means os.LookupEnv.
func (o *LoginStatic) Plugin(stderr io.Writer, execInfo string, lookupEnv func(string) (string, bool)) (*login.Plugin, error) {
	cfg, err := o.pluginConfig(stderr, execInfo)
	if err != nil {
		return nil, err
	}
	token := o.Token
	if o.TokenEnv != "" {
		if lookupEnv == nil {
			lookupEnv = os.LookupEnv
		}
		v, _ := lookupEnv(o.TokenEnv)
		if token = strings.TrimSpace(v); token == "" {
			return nil, fmt.Errorf("--token-env: the environment variable %s is unset or empty", o.TokenEnv)
		}
	}
	return login.NewStatic(cfg, token), nil
}

func (o *LoginCommon) pluginConfig(stderr io.Writer, execInfo string, fb KipFallback) (login.Config, error) {
	cfg := login.Config{
		Mode:      login.Mode(o.Mode),
		CacheDir:  o.CacheDir,
		ExecInfo:  execInfo,
		KipServer: fb.KipServer,
		Stderr:    stderr,
	}
	if execInfo != "" {
		// Run by client-go as its exec plugin: the parent is kubectl, or
		// whichever client-go program asks. kip kubeconfig, which asks
		// in-process once per cluster, has no exec info and no caller.
		cfg.Caller = os.Getppid()
	}
	if fb.KipCAFile != "" {
		ca, err := os.ReadFile(fb.KipCAFile)
		if err != nil {
			return login.Config{}, fmt.Errorf("--kip-ca-file: %w", err)
		}
		cfg.KipCAData = ca
	}
	return cfg, nil
}

func (o *LoginOIDC) pluginConfig(stderr io.Writer, execInfo string) (login.Config, error) {
	return o.LoginCommon.pluginConfig(stderr, execInfo, o.KipFallback)
}

func (o *LoginStatic) pluginConfig(stderr io.Writer, execInfo string) (login.Config, error) {
	return o.LoginCommon.pluginConfig(stderr, execInfo, o.KipFallback)
}

// issuerHTTPClient trusts only the CAs in caFile when it is set.
func issuerHTTPClient(caFile string) (*http.Client, error) {
	if caFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--issuer-ca-file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--issuer-ca-file: %s holds no PEM certificate", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}
