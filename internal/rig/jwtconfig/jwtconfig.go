package jwtconfig

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	"sigs.k8s.io/yaml"
)

// issuerKey is the extra under which the user's issuer reaches the cluster,
// so a test can tell which provider vouched for a user.
const issuerKey = "idp.kip.dev/issuer"

// File is the AuthenticationConfiguration, as YAML, that trusts one issuer
// for ID tokens whose audience is any of audiences: the email claim is the
// username, groups the groups, sub the UID, the issuer the extra issuerKey,
// and any more extras a test maps. caPEM is the issuer's serving CA.
func File(issuerURL string, audiences []string, caPEM []byte, extra ...apiserverv1.ExtraMapping) ([]byte, error) {
	if issuerURL == "" || len(audiences) == 0 {
		return nil, fmt.Errorf("jwtconfig: an issuer URL and at least one audience are needed")
	}
	noPrefix := ""
	cfg := apiserverv1.AuthenticationConfiguration{
		TypeMeta: metav1.TypeMeta{APIVersion: apiserverv1.SchemeGroupVersion.String(), Kind: "AuthenticationConfiguration"},
		JWT: []apiserverv1.JWTAuthenticator{{
			Issuer: apiserverv1.Issuer{
				URL:                  issuerURL,
				Audiences:            audiences,
				AudienceMatchPolicy:  apiserverv1.AudienceMatchPolicyMatchAny,
				CertificateAuthority: strings.TrimSpace(string(caPEM)),
			},
			ClaimMappings: apiserverv1.ClaimMappings{
				Username: apiserverv1.PrefixedClaimOrExpression{Claim: "email", Prefix: &noPrefix},
				Groups:   apiserverv1.PrefixedClaimOrExpression{Claim: "groups", Prefix: &noPrefix},
				UID:      apiserverv1.ClaimOrExpression{Claim: "sub"},
				Extra:    append([]apiserverv1.ExtraMapping{{Key: issuerKey, ValueExpression: "claims.iss"}}, extra...),
			},
		}},
	}
	return yaml.Marshal(cfg)
}
