package signer

import (
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"

	asn1util "k8s.io/apimachinery/pkg/apis/asn1"
	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/kip-proxy/kip/internal/headers"
)

var (
	oidCommonName   = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidOrganization = asn1.ObjectIdentifier{2, 5, 4, 10}
	// oidUID is the subject attribute kube-apiserver reads the UID from
	// (feature gate AllowParsingUserUIDFromCertAuth); kip writes the same
	// one so its certificates mean the same thing to either reader.
	oidUID = asn1util.X509UID()
)

// certificateUser is the user as kip writes it into a certificate:
// system:authenticated is left out because kip adds it on every
// authentication, the credential-id extra is left out because it names the
// exchanged token rather than the certificate, and extras without values
// are dropped. It refuses identities that kip could not hand upstream.
func certificateUser(u user.Info) (*user.DefaultInfo, error) {
	if u == nil {
		return nil, errors.New("no user was given")
	}
	id := &user.DefaultInfo{Name: u.GetName(), UID: u.GetUID(), Extra: map[string][]string{}}
	for _, g := range u.GetGroups() {
		if g != user.AllAuthenticated {
			id.Groups = append(id.Groups, g)
		}
	}
	for k, v := range u.GetExtra() {
		if k != user.CredentialIDKey && len(v) > 0 {
			id.Extra[k] = append([]string(nil), v...)
		}
	}
	return id, validateCertificateUser(id)
}

// validateCertificateUser holds the rules both issuance and authentication
// apply, so that kip never reads back a user it would not have written.
func validateCertificateUser(id *user.DefaultInfo) error {
	if id.Name == "" {
		return errors.New("the user name is empty")
	}
	// The group adder that gives every kip user system:authenticated
	// skips these two, so such an identity would escape that group.
	if id.Name == user.Anonymous {
		return fmt.Errorf("the user name %q is reserved for unauthenticated requests", user.Anonymous)
	}
	if err := headers.CheckUser(id); err != nil {
		return err
	}
	for _, g := range id.Groups {
		if err := validateGroup(g); err != nil {
			return err
		}
	}
	return validateExtras(id.Extra)
}

func validateGroup(g string) error {
	if g == "" {
		return errors.New("a group name is empty")
	}
	if g == user.AllUnauthenticated {
		return fmt.Errorf("the group %q is reserved for unauthenticated requests", user.AllUnauthenticated)
	}
	return nil
}

func validateExtras(extras map[string][]string) error {
	for k := range extras {
		if k == "" {
			return errors.New("an extra has an empty key")
		}
		if k == user.CredentialIDKey {
			return fmt.Errorf("the extra %q is derived from the certificate itself and cannot be carried in it", k)
		}
	}
	return nil
}

// subjectDER writes the subject with one RDN per attribute: Go would put
// all Organization values into one SET, and DER sorts a SET, losing the
// order of the groups.
func subjectDER(id *user.DefaultInfo) ([]byte, error) {
	var rdns pkix.RDNSequence
	for _, g := range id.Groups {
		rdns = append(rdns, pkix.RelativeDistinguishedNameSET{{Type: oidOrganization, Value: g}})
	}
	rdns = append(rdns, pkix.RelativeDistinguishedNameSET{{Type: oidCommonName, Value: id.Name}})
	if id.UID != "" {
		rdns = append(rdns, pkix.RelativeDistinguishedNameSET{{Type: oidUID, Value: id.UID}})
	}
	der, err := asn1.Marshal(rdns)
	if err != nil {
		return nil, fmt.Errorf("encoding the subject of %q: %w", id.Name, err)
	}
	return der, nil
}

// userFromCertificate reads back what kip wrote into leaf. Any doubt
// refuses the whole certificate.
func userFromCertificate(leaf *x509.Certificate) (*user.DefaultInfo, error) {
	name, err := commonName(leaf)
	if err != nil {
		return nil, err
	}
	uid, err := uidFromSubject(leaf)
	if err != nil {
		return nil, err
	}
	extras, err := extrasFromCertificate(leaf)
	if err != nil {
		return nil, err
	}
	id := &user.DefaultInfo{Name: name, UID: uid, Groups: append([]string(nil), leaf.Subject.Organization...), Extra: extras}
	if err := validateCertificateUser(id); err != nil {
		return nil, fmt.Errorf("the certificate's identity is not acceptable: %w", err)
	}
	return id, nil
}

// commonName insists on exactly one CommonName: pkix.Name keeps the last
// of several, and a certificate naming two users names none.
func commonName(leaf *x509.Certificate) (string, error) {
	var names []string
	for _, atv := range leaf.Subject.Names {
		if atv.Type.Equal(oidCommonName) {
			s, ok := atv.Value.(string)
			if !ok {
				return "", errors.New("the certificate's common name is not a string")
			}
			names = append(names, s)
		}
	}
	switch {
	case len(names) == 0 || names[0] == "":
		return "", errors.New("the certificate has no user name (empty common name)")
	case len(names) > 1:
		return "", fmt.Errorf("the certificate names %d users in its common name; it must name one", len(names))
	}
	return names[0], nil
}

// uidFromSubject follows kube-apiserver's parseUIDFromCert: at most one
// UID attribute, a string, not empty.
func uidFromSubject(leaf *x509.Certificate) (string, error) {
	var uids []string
	for _, atv := range leaf.Subject.Names {
		if !atv.Type.Equal(oidUID) {
			continue
		}
		uid, ok := atv.Value.(string)
		if !ok {
			return "", errors.New("the certificate's UID is not a string")
		}
		uids = append(uids, uid)
	}
	switch {
	case len(uids) == 0:
		return "", nil
	case len(uids) > 1:
		return "", fmt.Errorf("the certificate has %d UIDs; it may have one", len(uids))
	case uids[0] == "":
		return "", errors.New("the certificate's UID is empty")
	}
	return uids[0], nil
}

func extrasFromCertificate(leaf *x509.Certificate) (map[string][]string, error) {
	var found []pkix.Extension
	for _, ext := range leaf.Extensions {
		if ext.Id.Equal(extrasOID) {
			found = append(found, ext)
		}
	}
	switch len(found) {
	case 0:
		return map[string][]string{}, nil
	case 1:
	default:
		return nil, fmt.Errorf("the certificate carries kip's extras extension %d times", len(found))
	}
	extras, err := decodeExtras(found[0].Value)
	if err != nil {
		return nil, fmt.Errorf("the certificate's extras extension is malformed: %w", err)
	}
	return extras, nil
}

// CredentialID names a certificate, given as DER, the way kube-apiserver's
// CommonNameUserConversion does, so audit logs match across both.
func CredentialID(der []byte) string {
	fp := sha256.Sum256(der)
	return "X509SHA256=" + hex.EncodeToString(fp[:])
}

// withCredentialID returns a copy of id's extras with the certificate's own
// credential-id added.
func withCredentialID(extras map[string][]string, leaf *x509.Certificate) map[string][]string {
	out := maps.Clone(extras)
	if out == nil {
		out = map[string][]string{}
	}
	out[user.CredentialIDKey] = []string{CredentialID(leaf.Raw)}
	return out
}
