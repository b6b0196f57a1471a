package binaries

import "context"

// VersityGWVersion is versitygw, the S3-compatible server (Apache 2.0)
// that recording uploads are tested against; hack/tools/versitygw pins
// the same one. MinIO's server is AGPL, which kip does not take on.
const VersityGWVersion = "v1.8.0"

// versityGW is the S3 server, built from its own tools module: its
// dependency graph (cloud SDKs, Azure, Kafka) has nothing to share with
// the Kubernetes binaries'.
func versityGW() target {
	return target{
		name: "versitygw", dir: "versitygw-" + VersityGWVersion,
		module: "hack/tools/versitygw", pkg: "github.com/versity/versitygw/cmd/versitygw",
		ldflags: "-X main.Version=" + VersityGWVersion,
		pinPath: "github.com/versity/versitygw", pinVersion: VersityGWVersion,
		coldBuild: "2 to 5 min, the longer when other builds share the cores",
	}
}

// EnsureVersityGW returns the path of versitygw, building it when it is
// not cached. Only the tests of recording uploads need it, so Ensure
// leaves it out.
func EnsureVersityGW(ctx context.Context, opts Options) (string, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return "", err
	}
	return ensureOne(ctx, opts, versityGW())
}
