package binaries

import "context"

// The release tools, pinned by their own modules under hack/tools like the
// rest.
const (
	// CycloneDXVersion is cyclonedx-gomod, which writes each release
	// archive's SBOM from the build information in its binary.
	CycloneDXVersion = "v1.10.0"
	// KrewVersion is krew, kubectl's plugin manager, with which the release
	// test installs kip as `kubectl kip` the way users do.
	KrewVersion = "v0.4.3"
)

func sbomTool() target {
	return target{
		name: "cyclonedx-gomod", dir: "cyclonedx-gomod-" + CycloneDXVersion,
		module: "hack/tools/sbom", pkg: "github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod",
		pinPath: "github.com/CycloneDX/cyclonedx-gomod", pinVersion: CycloneDXVersion,
		coldBuild: "1 to 2 min",
	}
}

func krew() target {
	return target{
		name: "kubectl-krew", dir: "krew-" + KrewVersion,
		module: "hack/tools/krew", pkg: "sigs.k8s.io/krew/cmd/krew",
		ldflags: "-X sigs.k8s.io/krew/internal/version.gitTag=" + KrewVersion,
		pinPath: "sigs.k8s.io/krew", pinVersion: KrewVersion,
		coldBuild: "1 to 2 min",
	}
}

// EnsureSBOMTool returns the path of cyclonedx-gomod, building it when it
// is not cached.
func EnsureSBOMTool(ctx context.Context, opts Options) (string, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return "", err
	}
	return ensureOne(ctx, opts, sbomTool())
}

// EnsureKrew returns the path of krew, named kubectl-krew so that kubectl
// finds it as its plugin, building it when it is not cached.
func EnsureKrew(ctx context.Context, opts Options) (string, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return "", err
	}
	return ensureOne(ctx, opts, krew())
}
