package jwtconfig

import (
	"strings"
	"testing"
	"time"

	"github.com/kip-proxy/kip/internal/rig/pki"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apiserver/pkg/apis/apiserver"
	"k8s.io/apiserver/pkg/apis/apiserver/install"
	"k8s.io/apiserver/pkg/apis/apiserver/validation"
	authenticationcel "k8s.io/apiserver/pkg/authentication/cel"
)

// TestFilePassesKubeAPIServersRules decodes the file strictly and validates
// it as kube-apiserver does at start-up, and checks the mappings the tests
// rely on.
func TestFilePassesKubeAPIServersRules(t *testing.T) {
	ca, err := pki.NewCA("issuer-ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, audiences := range [][]string{{"kip"}, {"kip", "kip-short-lived"}} {
		data, err := File("https://127.0.0.1:4444/", audiences, ca.CertPEM)
		if err != nil {
			t.Fatal(err)
		}
		scheme := runtime.NewScheme()
		install.Install(scheme)
		obj, err := runtime.Decode(serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDecoder(), data)
		if err != nil {
			t.Fatalf("decoding %s: %v", data, err)
		}
		cfg := obj.(*apiserver.AuthenticationConfiguration)
		if errs := validation.ValidateAuthenticationConfiguration(authenticationcel.NewDefaultCompiler(), cfg, nil); len(errs) > 0 {
			t.Fatalf("%s: %v", data, errs.ToAggregate())
		}
		jwt := cfg.JWT[0]
		if got := jwt.ClaimMappings; got.Username.Claim != "email" || got.Username.Prefix == nil || *got.Username.Prefix != "" ||
			got.Groups.Claim != "groups" || got.UID.Claim != "sub" || len(got.Extra) != 1 || got.Extra[0].Key != issuerKey {
			t.Errorf("claim mappings = %+v", got)
		}
		if jwt.Issuer.CertificateAuthority != strings.TrimSpace(string(ca.CertPEM)) || len(jwt.Issuer.Audiences) != len(audiences) {
			t.Errorf("issuer = %+v", jwt.Issuer)
		}
	}
}

func TestFileRefusesMissingIssuerOrAudience(t *testing.T) {
	if _, err := File("", []string{"kip"}, nil); err == nil {
		t.Error("no issuer: no error")
	}
	if _, err := File("https://127.0.0.1:4444/", nil, nil); err == nil {
		t.Error("no audience: no error")
	}
}
