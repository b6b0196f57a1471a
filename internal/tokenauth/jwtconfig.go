package tokenauth

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apiserver/pkg/apis/apiserver"
	"k8s.io/apiserver/pkg/apis/apiserver/install"
	"k8s.io/apiserver/pkg/apis/apiserver/validation"
	authenticationcel "k8s.io/apiserver/pkg/authentication/cel"
)

// configCodecs decodes AuthenticationConfiguration files strictly, as
// kube-apiserver does: an unknown or duplicated field is an error, not a
// silently ignored typo in a security setting.
func configCodecs() serializer.CodecFactory {
	scheme := runtime.NewScheme()
	install.Install(scheme)
	return serializer.NewCodecFactory(scheme, serializer.EnableStrict)
}

// authenticationConfig is a decoded, validated configuration and the digest
// of the bytes it came from, so a reload can tell whether anything changed.
type authenticationConfig struct {
	config *apiserver.AuthenticationConfiguration
	digest [sha256.Size]byte
}

// loadAuthenticationConfig reads and validates the file at path.
func loadAuthenticationConfig(path string, compiler authenticationcel.Compiler) (*authenticationConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the authentication configuration: %w", err)
	}
	cfg, err := parseAuthenticationConfig(data, compiler)
	if err != nil {
		return nil, fmt.Errorf("authentication configuration %s: %w", path, err)
	}
	return &authenticationConfig{config: cfg, digest: sha256.Sum256(data)}, nil
}

// parseAuthenticationConfig decodes any served version of
// apiserver.config.k8s.io AuthenticationConfiguration and validates it
// with kube-apiserver's own rules.
func parseAuthenticationConfig(data []byte, compiler authenticationcel.Compiler) (*apiserver.AuthenticationConfiguration, error) {
	if len(data) == 0 {
		return nil, errors.New("the file is empty")
	}
	obj, err := runtime.Decode(configCodecs().UniversalDecoder(), data)
	if err != nil {
		return nil, err
	}
	cfg, ok := obj.(*apiserver.AuthenticationConfiguration)
	if !ok || cfg == nil {
		return nil, fmt.Errorf("expected kind AuthenticationConfiguration, got %T", obj)
	}
	if err := validation.ValidateAuthenticationConfiguration(compiler, cfg, nil).ToAggregate(); err != nil {
		return nil, err
	}
	// Rule 1 of kip's security model: every request is authenticated. An
	// anonymous section would open the proxy to everyone.
	if cfg.Anonymous != nil && cfg.Anonymous.Enabled {
		return nil, errors.New("anonymous.enabled: kip never accepts anonymous requests; remove the anonymous section")
	}
	if len(cfg.JWT) == 0 {
		return nil, errors.New("jwt: no issuer is configured")
	}
	return cfg, nil
}
