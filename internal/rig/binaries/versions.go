package binaries

// The versions kip is tested against. hack/tools/*/go.mod pin the same ones;
// Ensure refuses to build when they disagree, since the cache folder is named
// after these constants and would otherwise hold the wrong binary.
const (
	KubeVersion = "v1.37.2"
	EtcdVersion = "v3.6.16"
	// HydraVersion is Ory Hydra, the OIDC provider kip signs in with in
	// tests and `kip dev`.
	HydraVersion = "v2.3.0"
)
