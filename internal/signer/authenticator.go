package signer

import (
	"crypto/x509"
	"fmt"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/group"
	x509request "k8s.io/apiserver/pkg/authentication/request/x509"
)

// NewAuthenticator returns the authenticator for certificates kip issued.
// It verifies the presented chain against ca's trusted bundle (the signing
// CA and the retired ones still inside their window) and reads name,
// groups, UID and extras back, adding system:authenticated as
// kube-apiserver does for client certificates.
//
// Verifying against kip's signer CA, and nothing else, is what makes the
// extras extension trustworthy: nobody but kip can put it into a
// certificate this authenticator accepts.
func NewAuthenticator(ca *CA) authenticator.Request {
	return group.NewAuthenticatedGroupAdder(x509request.NewDynamic(ca.VerifyOptions, x509request.UserConversionFunc(userFromChain)))
}

// userFromChain reads a kip identity from a chain that has already been
// verified against kip's signer CA. It is unexported, and NewAuthenticator
// is its only user, so that nothing can pair it with a chain verified
// against any other CA: the extension would then be a claim anyone can make.
func userFromChain(chain []*x509.Certificate) (*authenticator.Response, bool, error) {
	// kip's signer never issues intermediates: a verified kip chain is
	// exactly the leaf and the signer.
	if len(chain) != 2 {
		return nil, false, fmt.Errorf("the certificate chain has %d certificates; a kip certificate is signed directly by kip's signer CA", len(chain))
	}
	leaf := chain[0]
	id, err := userFromCertificate(leaf)
	if err != nil {
		return nil, false, fmt.Errorf("refusing the client certificate with serial %d: %w", leaf.SerialNumber, err)
	}
	id.Extra = withCredentialID(id.Extra, leaf)
	return &authenticator.Response{User: id}, true, nil
}
