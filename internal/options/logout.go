package options

import (
	"errors"
	"io"

	"github.com/spf13/pflag"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"

	"github.com/kip-proxy/kip/internal/login"
)

// LogoutAll is the option set of `kip logout --all`. `kip logout oidc`
// and `kip logout static` take LoginOIDC and LoginStatic, so that the
// arguments of a kubeconfig's exec section name the same cache entry.
type LogoutAll struct {
	All          bool
	CacheDir     string
	IssuerCAFile string
}

// NewLogoutAll returns the defaults.
func NewLogoutAll() *LogoutAll {
	return &LogoutAll{CacheDir: newLoginCommon().CacheDir}
}

// AddFlags registers every flag on fs.
func (o *LogoutAll) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.All, "all", o.All, "Delete every cached login and revoke each refresh token at its provider.")
	fs.StringVar(&o.CacheDir, "cache-dir", o.CacheDir, "Directory of the login cache, as given to kip login.")
	fs.StringVar(&o.IssuerCAFile, "issuer-ca-file", o.IssuerCAFile, "PEM file of the CAs to trust for the providers instead of the system's.")
}

// Validate reports every invalid option at once.
func (o *LogoutAll) Validate() error {
	var errs []error
	if !o.All {
		errs = append(errs, errors.New("say which login to end: kip logout oidc (or static) with the flags of kip login, as in the kubeconfig's exec section, or kip logout --all"))
	}
	if o.CacheDir == "" {
		errs = append(errs, errors.New("--cache-dir is required: this system has no user cache directory"))
	}
	if o.IssuerCAFile != "" {
		errs = appendIfErr(errs, checkFile("--issuer-ca-file", o.IssuerCAFile))
	}
	return utilerrors.NewAggregate(errs)
}

// Logout builds the logout of every cached login.
func (o *LogoutAll) Logout(out io.Writer) (*login.Logout, error) {
	httpClient, err := issuerHTTPClient(o.IssuerCAFile)
	if err != nil {
		return nil, err
	}
	return login.LogoutAll(o.CacheDir, out, httpClient), nil
}
