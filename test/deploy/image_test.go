package deploy

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// testVersion is what the tests stamp into kip through the Dockerfile's
// VERSION build argument.
const testVersion = "v0.0.0-deploy-test"

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	keyword string // upper case
	args    string
}

// stage is one FROM and what follows it.
type stage struct {
	from, name   string
	instructions []instruction
}

// dockerfile is the parsed Dockerfile: the build stage and the image.
type dockerfile struct {
	build, image stage
}

func readDockerfile() (dockerfile, error) {
	data, err := os.ReadFile(filepath.Join(env.root, "Dockerfile"))
	if err != nil {
		return dockerfile{}, err
	}
	globalArgs := map[string]string{}
	var stages []stage
	var line strings.Builder
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		text := strings.TrimSpace(s.Text())
		if strings.HasPrefix(text, "#") || (text == "" && line.Len() == 0) {
			continue
		}
		if cont, ok := strings.CutSuffix(text, "\\"); ok {
			line.WriteString(cont + " ")
			continue
		}
		line.WriteString(text)
		keyword, args, _ := strings.Cut(strings.TrimSpace(line.String()), " ")
		line.Reset()
		in := instruction{keyword: strings.ToUpper(keyword), args: strings.TrimSpace(args)}
		switch {
		case in.keyword == "FROM":
			from, name, _ := strings.Cut(in.args, " AS ")
			// The image is the last field; --platform and such come first.
			fields := strings.Fields(from)
			from = os.Expand(fields[len(fields)-1], func(k string) string { return globalArgs[k] })
			stages = append(stages, stage{from: from, name: strings.TrimSpace(name)})
		case len(stages) == 0 && in.keyword == "ARG":
			k, v, _ := strings.Cut(in.args, "=")
			globalArgs[k] = v
		case len(stages) > 0:
			stages[len(stages)-1].instructions = append(stages[len(stages)-1].instructions, in)
		}
	}
	if err := s.Err(); err != nil {
		return dockerfile{}, err
	}
	if len(stages) != 2 {
		return dockerfile{}, fmt.Errorf("the Dockerfile has %d stages, want a build stage and the image", len(stages))
	}
	return dockerfile{build: stages[0], image: stages[1]}, nil
}

// all returns the arguments of every instruction with keyword.
func (s stage) all(keyword string) []string {
	var out []string
	for _, in := range s.instructions {
		if in.keyword == keyword {
			out = append(out, in.args)
		}
	}
	return out
}

// argDefaults are the stage's ARG defaults.
func (s stage) argDefaults() map[string]string {
	m := map[string]string{}
	for _, a := range s.all("ARG") {
		k, v, _ := strings.Cut(a, "=")
		m[k] = v
	}
	return m
}

// goBuild is the build stage's RUN that builds kip, and the file it writes.
func (s stage) goBuild() (command, output string, err error) {
	for _, run := range s.all("RUN") {
		if !strings.Contains(run, "go build") {
			continue
		}
		fields := strings.Fields(run)
		if i := slices.Index(fields, "-o"); i >= 0 && i+1 < len(fields) {
			return run, fields[i+1], nil
		}
		return "", "", fmt.Errorf("the go build command %q has no -o", run)
	}
	return "", "", errors.New("the build stage has no RUN with go build")
}

// buildLikeDockerfile runs the build stage's go build command in the
// checkout, as the image build does in /src, with the ARG defaults as its
// environment and VERSION set to testVersion. It writes kip into dir.
func buildLikeDockerfile(ctx context.Context, dir string) (string, error) {
	df, err := readDockerfile()
	if err != nil {
		return "", err
	}
	command, output, err := df.build.goBuild()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "kip")
	command = strings.Replace(command, "-o "+output, "-o "+bin, 1)
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.Dir = env.root
	cmd.Env = append(os.Environ(), "GOWORK=off")
	for k, v := range df.build.argDefaults() {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "VERSION="+testVersion)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "building kip with the Dockerfile's command (a first build takes 3 to 6 min on 2 cores; cached afterwards): %s\n", command)
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s: %w\n%s", command, err, out)
	}
	fmt.Fprintf(os.Stderr, "built kip in %s\n", time.Since(start).Round(time.Second))
	return bin, nil
}

func dockerfileOrFail(t *testing.T) dockerfile {
	t.Helper()
	df, err := readDockerfile()
	if err != nil {
		t.Fatal(err)
	}
	return df
}

// TestImageBinaryIsStatic: the binary the Dockerfile builds runs on
// distroless static, which has no C library or dynamic loader.
func TestImageBinaryIsStatic(t *testing.T) {
	df := dockerfileOrFail(t)
	command, _, err := df.build.goBuild()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/kip"} {
		if !strings.Contains(command, want) {
			t.Errorf("the go build command %q lacks %s", command, want)
		}
	}
	f, err := elf.Open(kipBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("kip has a PT_INTERP program header: it needs a dynamic loader the image does not have")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("kip needs shared libraries %v (%v), want none", libs, err)
	}
	if f.Section(".dynamic") != nil {
		t.Error("kip has a .dynamic section: it is linked dynamically")
	}
}

// TestImageCarriesTheVersion: VERSION reaches `kip version` through the
// Dockerfile's -X flags.
func TestImageCarriesTheVersion(t *testing.T) {
	if _, err := os.Stat(filepath.Join(env.root, "internal", "version")); err != nil {
		t.Skip("internal/version does not exist yet, so there is no version to stamp")
	}
	out, err := exec.Command(kipBinary(t), "version").CombinedOutput()
	if err != nil {
		t.Fatalf("kip version: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), testVersion) {
		t.Errorf("kip version printed %q, want the build argument VERSION=%s in it", out, testVersion)
	}
}

// TestDockerfileStages checks the stages' bases, what the image holds and
// how it starts: the chart's Deployment passes only arguments, so the
// entrypoint must be kip.
func TestDockerfileStages(t *testing.T) {
	df := dockerfileOrFail(t)
	if want := "golang:" + goMinorVersion(t); df.build.from != want {
		t.Errorf("the build stage is FROM %s, want %s, the Go of go.mod", df.build.from, want)
	}
	if df.image.from != "gcr.io/distroless/static:nonroot" {
		t.Errorf("the image is FROM %s, want gcr.io/distroless/static:nonroot", df.image.from)
	}
	if got := df.image.all("USER"); !slices.Equal(got, []string{"65532:65532"}) && !slices.Equal(got, []string{"65532"}) {
		t.Errorf("the image's USER is %q, want 65532 (nonroot)", got)
	}
	if got := df.image.all("ENTRYPOINT"); !slices.Equal(got, []string{`["/kip"]`}) {
		t.Errorf("the image's ENTRYPOINT is %q, want [\"/kip\"]", got)
	}
	for _, keyword := range []string{"RUN", "SHELL", "CMD"} {
		if got := df.image.all(keyword); len(got) > 0 {
			t.Errorf("the image has %s %q; it has no shell and takes its arguments from the Deployment", keyword, got)
		}
	}
	_, output, err := df.build.goBuild()
	if err != nil {
		t.Fatal(err)
	}
	if want := "--from=" + df.build.name + " " + output + " /kip"; !slices.Equal(df.image.all("COPY"), []string{want}) {
		t.Errorf("the image's COPY is %q, want only %q", df.image.all("COPY"), want)
	}
}

// TestDockerfileCopiesEverySource: the build stage's COPY instructions and
// .dockerignore let in every file of kip's own packages.
func TestDockerfileCopiesEverySource(t *testing.T) {
	df := dockerfileOrFail(t)
	var copied []string
	for _, c := range df.build.all("COPY") {
		fields := strings.Fields(c)
		for _, src := range fields[:len(fields)-1] {
			copied = append(copied, strings.TrimSuffix(src, "/"))
		}
	}
	ignore, err := os.ReadFile(filepath.Join(env.root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range copied {
		if !slices.Contains(strings.Fields(string(ignore)), "!"+src) && !slices.Contains(strings.Fields(string(ignore)), "!"+src+"/") {
			t.Errorf(".dockerignore does not let %s into the build context", src)
		}
	}
	list := exec.Command("go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}", "./cmd/kip")
	list.Dir = env.root
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for dir := range strings.FieldsSeq(string(out)) {
		rel, err := filepath.Rel(env.root, dir)
		if err != nil {
			t.Fatal(err)
		}
		top, _, _ := strings.Cut(rel, string(filepath.Separator))
		if !slices.Contains(copied, top) {
			t.Errorf("kip's package in %s is not in the build stage: COPY %s/ is missing", rel, top)
		}
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		if !slices.Contains(copied, f) {
			t.Errorf("the build stage does not copy %s", f)
		}
	}
}

// goMinorVersion is go.mod's go directive without the patch, as golang
// image tags name it.
func goMinorVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(env.root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			parts := strings.SplitN(v, ".", 3)
			return strings.Join(parts[:min(2, len(parts))], ".")
		}
	}
	t.Fatal("go.mod has no go directive")
	return ""
}
