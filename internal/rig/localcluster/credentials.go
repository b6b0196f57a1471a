package localcluster

import (
	"path/filepath"
	"time"

	"k8s.io/client-go/util/keyutil"

	"github.com/kip-proxy/kip/internal/rig/pki"
)

// credentialValidity is how long the cluster's CAs and admin certificate
// live: far longer than any test, long enough for a day of `kip dev`.
const credentialValidity = 30 * 24 * time.Hour

// adminUser is the admin's user name; system:masters bypasses RBAC, which
// the rig needs before any Role exists.
const (
	adminUser  = "kip-admin"
	adminGroup = "system:masters"
)

// credentials are the files and keys one cluster runs with.
type credentials struct {
	clientCA     *pki.CA
	clientCAFile string

	servingCAPEM                    []byte
	servingCAFile                   string
	servingCertFile, servingKeyFile string

	// serviceAccountKeyFile holds a private key; kube-apiserver signs tokens
	// with it and derives the verifying public key from the same file.
	serviceAccountKeyFile string

	adminCertPEM, adminKeyPEM []byte
}

// newCredentials generates every key and certificate a cluster needs and
// writes the ones kube-apiserver reads to dir.
//
// Client and serving certificates come from separate CAs, as in a real
// cluster: trusting the serving CA must not make its certificates valid
// client credentials.
func newCredentials(dir string) (*credentials, error) {
	clientCA, err := pki.NewCA("kip-local-client-ca", credentialValidity)
	if err != nil {
		return nil, err
	}
	servingCA, err := pki.NewCA("kip-local-serving-ca", credentialValidity)
	if err != nil {
		return nil, err
	}
	servingCert, servingKey, err := servingCA.IssueServing([]string{"127.0.0.1", "localhost"}, credentialValidity)
	if err != nil {
		return nil, err
	}
	adminCert, adminKey, err := clientCA.IssueClient(pki.ClientCertRequest{
		CommonName:    adminUser,
		Organizations: []string{adminGroup},
		NotAfter:      time.Now().Add(credentialValidity),
	})
	if err != nil {
		return nil, err
	}
	saKey, err := keyutil.MakeEllipticPrivateKeyPEM()
	if err != nil {
		return nil, err
	}

	c := &credentials{
		clientCA:     clientCA,
		servingCAPEM: servingCA.CertPEM,
		adminCertPEM: adminCert,
		adminKeyPEM:  adminKey,
	}
	if c.clientCAFile, _, err = pki.WriteFiles(dir, "client-ca", clientCA.CertPEM, nil); err != nil {
		return nil, err
	}
	// kube-apiserver does not read the serving CA; it is written for clients
	// such as `kip dev` that take a CA file rather than a kubeconfig.
	if c.servingCAFile, _, err = pki.WriteFiles(dir, "serving-ca", servingCA.CertPEM, nil); err != nil {
		return nil, err
	}
	if c.servingCertFile, c.servingKeyFile, err = pki.WriteFiles(dir, "apiserver", servingCert, servingKey); err != nil {
		return nil, err
	}
	c.serviceAccountKeyFile = filepath.Join(dir, "service-account.key")
	if err := keyutil.WriteKey(c.serviceAccountKeyFile, saKey); err != nil {
		return nil, err
	}
	return c, nil
}
