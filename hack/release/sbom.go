package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// sbomName is the SBOM of the binary in archive.
func sbomName(archive string) string {
	return strings.TrimSuffix(strings.TrimSuffix(archive, ".zip"), ".tar.gz") + ".sbom.cdx.json"
}

// writeSBOM runs cyclonedx-gomod on binary: a CycloneDX SBOM of every
// module linked into it, read from the build information the Go toolchain
// embeds, so it lists exactly what that platform's binary holds. Without a
// serial number or a timestamp, it is as reproducible as the binary.
func writeSBOM(ctx context.Context, tool, binary, version, out string) error {
	cmd := exec.CommandContext(ctx, tool, "bin", "-json", "-noserial", "-notimestamp", "-version", version, "-output", out, binary)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("writing the SBOM of %s: %w\n%s", binary, err, strings.TrimSpace(string(b)))
	}
	return nil
}
