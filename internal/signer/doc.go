// Package signer is kip's own certificate authority: it issues the
// short-lived client certificates that the credential exchange hands out,
// and reads the identity back out of them when they are presented.
//
// # Identity in a certificate
//
// A kip certificate carries the whole identity kip impersonates upstream:
// the user name in the subject's CommonName, the groups as Organization
// attributes (one RDN each, so their order survives), the UID in the subject
// attribute kube-apiserver itself reads (OID 1.3.6.1.4.1.57683.2), and the
// extras in a non-critical extension of kip's own, DER encoded with sorted
// keys so the same identity always gives the same bytes.
//
// # Security model
//
//   - Only kip's signer CA vouches for the extension. NewAuthenticator
//     verifies chains against that CA alone, so the extension is read only
//     from certificates kip signed; a certificate from any other CA carrying
//     the same extension is never read by it. The signer CA must therefore
//     be dedicated to kip: anything else it signs could claim extras.
//   - Identities are all or nothing. A certificate whose extension is
//     malformed, duplicated, not in canonical form, or has an empty key, or
//     whose subject has no or several user names, is refused (401); it is
//     never accepted with part of its identity. kip's signer never issues
//     intermediates, so a chain longer than leaf and signer is refused too.
//     Put NewAuthenticator ahead of, not beside, a generic x509
//     authenticator that trusts the same CA: a union would hand a refused
//     certificate to the next authenticator, which reads only CN and O.
//   - The credential-id extra names the certificate, not the token that was
//     exchanged for it, so it is never written at issuance; the
//     authenticator derives it from the certificate as kube-apiserver does.
//   - Rotation never cuts off a certificate that is still valid. A retired
//     CA stays trusted until every certificate it could have signed has
//     expired: the rotation time plus Options.MaxCertificateTTL plus a
//     propagation grace, but never past the retired CA's own NotAfter.
//   - A bad reload (a file pair that does not match, a certificate that is
//     not a CA, a Secret that does not parse) keeps the last good CA and is
//     logged; kip never replaces a Secret it cannot read.
//
// # Sources
//
// NewFromFiles reads a PEM certificate and key the operator provides,
// reloads them when they change and remembers the previous CA in memory.
// NewFromSecret keeps the CA in a kubernetes.io/tls Secret shared by every
// replica, creates it when absent, persists retired CAs and their trust
// windows beside it, and rotates it (explicitly with Rotate, or
// automatically when less than a fifth of its lifetime is left or an
// operator annotates the Secret). See secret.go for the Secret's layout
// and rotate.go for the annotations.
//
// # Several replicas
//
// Every replica watches the Secret and switches to what it holds. One
// replica at a time, the holder of a Lease beside the Secret (client-go's
// leader election), rotates it; when it dies or loses the Lease, another
// takes over after the Lease's duration. A rotation is one Update of the
// Secret guarded by its resourceVersion, so it is written whole or not at
// all, and a leader killed half-way leaves the next one a CA still due or
// a request still pending, which it then honours.
package signer
