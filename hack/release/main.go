package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kip-proxy/kip/internal/rig/binaries"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		_, _ = fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, log io.Writer) error {
	if len(args) > 0 && args[0] == "krew" {
		return runKrew(args[1:], stdout)
	}
	o, err := parseOptions(args)
	if err != nil {
		return err
	}
	if o.crossCheck {
		return crossCheck(ctx, o, log)
	}
	return release(ctx, o, log)
}

type options struct {
	version, commit, out, downloadURL, root string
	sourceDate                              time.Time
	crossCheck                              bool
}

// releaseVersion is what krew and Go modules accept as a release: v1.2.3,
// or v1.3.0-rc.1.
var releaseVersion = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$`)

func parseOptions(args []string) (options, error) {
	var o options
	var sourceDate string
	fs := flag.NewFlagSet("release", flag.ContinueOnError)
	fs.StringVar(&o.version, "version", "", "The release's version, vMAJOR.MINOR.PATCH[-PRERELEASE]; stamped into kip and named in every file.")
	fs.StringVar(&o.commit, "commit", "", "The commit stamped into kip (default: git rev-parse HEAD).")
	fs.StringVar(&o.out, "out", "dist", "Directory to write the release into.")
	fs.StringVar(&o.downloadURL, "download-url", "", "Where krew downloads the archives from (default: "+homepage+"/releases/download/<version>).")
	fs.StringVar(&sourceDate, "source-date-epoch", os.Getenv("SOURCE_DATE_EPOCH"), "Unix time of every archive entry (default: $SOURCE_DATE_EPOCH, else the commit's time).")
	fs.BoolVar(&o.crossCheck, "cross-check", false, "Only cross-compile kip for every platform into --out and vet its packages for each, as CI does on every change.")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() != 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	root, err := binaries.FindRepoRoot()
	if err != nil {
		return o, err
	}
	o.root = root
	if o.crossCheck && o.version == "" {
		o.version = "v0.0.0-dev"
	}
	if !releaseVersion.MatchString(o.version) {
		return o, fmt.Errorf("--version %q is not a release version such as v1.2.3 or v1.3.0-rc.1 (make release VERSION=v1.2.3)", o.version)
	}
	if o.commit == "" {
		if o.commit, err = git(root, "rev-parse", "HEAD"); err != nil {
			return o, fmt.Errorf("finding the commit (or give --commit): %w", err)
		}
	}
	if o.sourceDate, err = parseSourceDate(root, sourceDate); err != nil {
		return o, err
	}
	if o.downloadURL == "" {
		o.downloadURL = homepage + "/releases/download/" + o.version
	}
	return o, nil
}

// parseSourceDate is the time given, else the time of HEAD's commit, so
// that two builds of one commit write the same archives.
func parseSourceDate(root, given string) (time.Time, error) {
	if given == "" {
		var err error
		if given, err = git(root, "log", "-1", "--format=%ct"); err != nil {
			return time.Time{}, fmt.Errorf("finding the commit's time (or give --source-date-epoch): %w", err)
		}
	}
	secs, err := strconv.ParseInt(given, 10, 64)
	if err != nil || secs < 0 {
		return time.Time{}, fmt.Errorf("--source-date-epoch %q is not a Unix time", given)
	}
	return time.Unix(secs, 0).UTC(), nil
}

func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	b, err := cmd.Output()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(exitErr.Stderr)))
	}
	return strings.TrimSpace(string(b)), err
}

// crossCheck builds kip for every platform and vets kip's own packages
// for each, test files included, so that a Linux-only call in the client
// fails CI here rather than a user's build on a Mac.
func crossCheck(ctx context.Context, o options, log io.Writer) error {
	if err := crossBuild(ctx, o, log); err != nil {
		return err
	}
	for _, p := range platforms {
		_, _ = fmt.Fprintf(log, "vetting kip's packages for %s\n", p)
		if err := vetFor(ctx, o.root, p); err != nil {
			return err
		}
	}
	return nil
}

// crossBuild builds kip for every platform, failing on the first that does
// not compile.
func crossBuild(ctx context.Context, o options, log io.Writer) error {
	_, _ = fmt.Fprintf(log, "building kip for %d platforms into %s (a first build takes 3 to 5 min per platform on 2 cores; cached afterwards)\n", len(platforms), o.out)
	for _, p := range platforms {
		start := time.Now()
		if _, err := buildKip(ctx, o.root, o.out, p, o.version, o.commit); err != nil {
			return err
		}
		_, _ = fmt.Fprintf(log, "built kip for %s in %s\n", p, time.Since(start).Round(time.Second))
	}
	return nil
}

// release writes the archives, their SBOMs, the checksums and krew's
// manifest into o.out.
func release(ctx context.Context, o options, log io.Writer) error {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	sbomTool, err := binaries.EnsureSBOMTool(ctx, binaries.Options{RepoRoot: o.root, Log: log})
	if err != nil {
		return err
	}
	bin, err := os.MkdirTemp("", "kip-release-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(bin) }()
	if err := crossBuild(ctx, options{root: o.root, out: bin, version: o.version, commit: o.commit}, log); err != nil {
		return err
	}
	var written []string
	for _, p := range platforms {
		names, err := packagePlatform(ctx, o, p, filepath.Join(bin, p.OS+"_"+p.Arch, p.binary()), sbomTool)
		if err != nil {
			return err
		}
		written = append(written, names...)
	}
	sums := filepath.Join(o.out, checksumsName(o.version))
	if err := writeChecksums(sums, o.out, written); err != nil {
		return err
	}
	manifest, err := krewFromChecksums(sums, o.version, o.downloadURL)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.out, "kip.yaml"), manifest, 0o644); err != nil {
		return err
	}
	_, _ = fmt.Fprintf(log, "wrote kip %s (commit %s) to %s: %d archives with their SBOMs, %s and krew's kip.yaml\n",
		o.version, o.commit, o.out, len(platforms), checksumsName(o.version))
	return nil
}

// packagePlatform writes p's archive and SBOM, and returns their names.
func packagePlatform(ctx context.Context, o options, p platform, binary, sbomTool string) ([]string, error) {
	archive := archiveName(o.version, p)
	members := []member{
		{name: p.binary(), path: binary, mode: 0o755},
		{name: "LICENSE", path: filepath.Join(o.root, "LICENSE"), mode: 0o644},
		{name: "README.md", path: filepath.Join(o.root, "README.md"), mode: 0o644},
	}
	if err := writeArchive(filepath.Join(o.out, archive), members, o.sourceDate); err != nil {
		return nil, fmt.Errorf("writing %s: %w", archive, err)
	}
	sbom := sbomName(archive)
	if err := writeSBOM(ctx, sbomTool, binary, o.version, filepath.Join(o.out, sbom)); err != nil {
		return nil, err
	}
	return []string{archive, sbom}, nil
}

func krewFromChecksums(path, version, downloadURL string) ([]byte, error) {
	sums, err := readChecksums(path)
	if err != nil {
		return nil, err
	}
	return krewManifest(version, downloadURL, sums)
}

// runKrew writes krew's manifest for a release's checksums file to stdout:
// for a custom index, or a mirror of the archives under another URL.
func runKrew(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("release krew", flag.ContinueOnError)
	checksums := fs.String("checksums", "", "The release's checksums file, kip_<version>_checksums.txt.")
	downloadURL := fs.String("download-url", "", "Where krew downloads the archives from (default: "+homepage+"/releases/download/<version>).")
	if err := fs.Parse(args); err != nil {
		return err
	}
	version, ok := strings.CutSuffix(strings.TrimPrefix(filepath.Base(*checksums), "kip_"), "_checksums.txt")
	if *checksums == "" || !ok || !releaseVersion.MatchString(version) {
		return fmt.Errorf("--checksums must name a release's kip_<version>_checksums.txt, not %q", *checksums)
	}
	if *downloadURL == "" {
		*downloadURL = homepage + "/releases/download/" + version
	}
	manifest, err := krewFromChecksums(*checksums, version, *downloadURL)
	if err != nil {
		return err
	}
	_, err = stdout.Write(manifest)
	return err
}
