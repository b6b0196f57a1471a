package exchange

import (
	"context"
	"encoding/pem"

	"k8s.io/apiserver/pkg/audit"
	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/kip-proxy/kip/internal/signer"
)

// The annotations of an exchange's audit event in kip's audit log. The
// event itself has no user: the caller is not authenticated. What it was
// given is in the annotations, so that an incident responder can find the
// certificates a user got, and from where, and revoke one by its
// credential-id (kip revoke credential).
const (
	// AuditOutcomeAnnotation is issued, token-refused or not-checked (no
	// outbound review slot was free).
	AuditOutcomeAnnotation = "kip.dev/exchange-outcome"
	// AuditUserAnnotation is the user a certificate was issued for.
	AuditUserAnnotation = "kip.dev/exchange-user"
	// AuditCredentialAnnotation is the issued certificate's credential-id,
	// X509SHA256=…, as the events of its later requests carry it in the
	// authentication.kubernetes.io/credential-id extra.
	AuditCredentialAnnotation = "kip.dev/exchange-credential-id"
)

// auditIssued records a certificate issued for u.
func auditIssued(ctx context.Context, u user.Info, certPEM []byte) {
	audit.AddAuditAnnotations(ctx,
		AuditOutcomeAnnotation, outcomeIssued,
		AuditUserAnnotation, u.GetName(),
		AuditCredentialAnnotation, credentialID(certPEM))
}

// credentialID is the credential-id of a PEM certificate, as its later
// requests carry it; "" if it is not PEM, which the issuer never returns.
func credentialID(certPEM []byte) string {
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return ""
	}
	return signer.CredentialID(block.Bytes)
}

// The outcomes of an exchange whose token was looked at.
const (
	outcomeIssued = "issued"
	// outcomeRefused: the authenticator refused the token, or could not
	// decide (its log line says which).
	outcomeRefused = "token-refused"
	// outcomeNotChecked: no outbound review slot came free in time.
	outcomeNotChecked = "not-checked"
)

// auditNotIssued records why a token bought no certificate.
func auditNotIssued(ctx context.Context, outcome string) {
	audit.AddAuditAnnotation(ctx, AuditOutcomeAnnotation, outcome)
}
