// Command render prints the manifests of a Helm chart, as `helm template`
// would, with Helm's own Go library: kip's `make manifests` and its chart
// tests render deploy/helm/kip with it, so no helm binary is needed.
//
//	render --chart deploy/helm/kip --values f.yaml --namespace kip-system
//	render --chart deploy/helm/kip --lint
//
// Values are validated against the chart's values.schema.json; a value the
// schema refuses is an error, as with helm install. --lint runs `helm lint
// --strict` instead of rendering.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli/values"
	"helm.sh/helm/v3/pkg/getter"
)

// kubeVersion is the Kubernetes version the chart is rendered for, the one
// kip is tested against.
const kubeVersion = "v1.37.2"

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	chartDir := fs.String("chart", "", "the chart's directory")
	namespace := fs.String("namespace", "default", "namespace to install into")
	release := fs.String("release-name", "kip", "release name")
	lint := fs.Bool("lint", false, "lint the chart as `helm lint --strict` does, instead of rendering it")
	var valueFiles, sets stringList
	fs.Var(&valueFiles, "values", "values file (repeatable; later files win)")
	fs.Var(&sets, "set", "key=value (repeatable), as helm --set")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *chartDir == "" || fs.NArg() > 0 {
		return errors.New("usage: render --chart DIR [--values FILE]... [--set k=v]... [--namespace NS] [--release-name NAME] [--lint]")
	}
	if *lint {
		return lintChart(*chartDir, *namespace, valueFiles, sets)
	}
	manifest, err := render(*chartDir, *release, *namespace, valueFiles, sets)
	if err != nil {
		return err
	}
	_, err = os.Stdout.WriteString(manifest)
	return err
}

// lintChart is `helm lint --strict`: it prints every finding and fails on
// any warning or error.
func lintChart(chartDir, namespace string, valueFiles, sets []string) error {
	vals, err := (&values.Options{ValueFiles: valueFiles, Values: sets}).MergeValues(getter.Providers{})
	if err != nil {
		return fmt.Errorf("reading values: %w", err)
	}
	l := action.NewLint()
	l.Strict, l.Namespace = true, namespace
	res := l.Run([]string{chartDir}, vals)
	for _, m := range res.Messages {
		fmt.Println(m)
	}
	if len(res.Errors) > 0 {
		return fmt.Errorf("the chart has %d lint findings: %w", len(res.Errors), errors.Join(res.Errors...))
	}
	return nil
}

// render is `helm template`: a client-only dry-run install.
func render(chartDir, release, namespace string, valueFiles, sets []string) (string, error) {
	chrt, err := loader.Load(chartDir)
	if err != nil {
		return "", fmt.Errorf("loading the chart: %w", err)
	}
	vals, err := (&values.Options{ValueFiles: valueFiles, Values: sets}).MergeValues(getter.Providers{})
	if err != nil {
		return "", fmt.Errorf("reading values: %w", err)
	}
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		return "", err
	}
	install := action.NewInstall(&action.Configuration{})
	install.DryRun, install.ClientOnly, install.Replace = true, true, true
	install.ReleaseName, install.Namespace = release, namespace
	install.KubeVersion = kv
	install.DisableHooks = true
	rel, err := install.Run(chrt, vals)
	if err != nil {
		return "", err
	}
	return rel.Manifest, nil
}
