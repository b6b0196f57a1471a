package rig

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/bench/internal/load"
)

// TargetSpec is a target given on the command line:
// name=URL[,ca=FILE][,cert=FILE,key=FILE][,token=FILE][,pid=PID].
type TargetSpec struct {
	Name, URL                 string
	CAFile, CertFile, KeyFile string
	TokenFile                 string
	PID                       int
}

// reservedNames are the targets the rig starts itself.
var reservedNames = []string{"direct", "kip", "kubectl-proxy"}

// ParseTargetSpec reads one --target value.
func ParseTargetSpec(s string) (TargetSpec, error) {
	parts := strings.Split(s, ",")
	var spec TargetSpec
	var ok bool
	if spec.Name, spec.URL, ok = strings.Cut(parts[0], "="); !ok || spec.Name == "" {
		return TargetSpec{}, fmt.Errorf("--target %q: want name=URL first", s)
	}
	for _, reserved := range reservedNames {
		if spec.Name == reserved {
			return TargetSpec{}, fmt.Errorf("--target %q: %s is the name of a built-in target", s, reserved)
		}
	}
	if u, err := url.Parse(spec.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return TargetSpec{}, fmt.Errorf("--target %q: %q is not an http(s) URL", s, spec.URL)
	}
	for _, kv := range parts[1:] {
		if err := spec.set(kv); err != nil {
			return TargetSpec{}, fmt.Errorf("--target %q: %w", s, err)
		}
	}
	if (spec.CertFile == "") != (spec.KeyFile == "") {
		return TargetSpec{}, fmt.Errorf("--target %q: cert and key go together", s)
	}
	return spec, nil
}

func (spec *TargetSpec) set(kv string) error {
	k, v, _ := strings.Cut(kv, "=")
	if v == "" {
		return fmt.Errorf("%q has no value", kv)
	}
	var err error
	switch k {
	case "ca":
		spec.CAFile = v
	case "cert":
		spec.CertFile = v
	case "key":
		spec.KeyFile = v
	case "token":
		spec.TokenFile = v
	case "pid":
		spec.PID, err = strconv.Atoi(v)
	default:
		err = fmt.Errorf("unknown key %q (want ca, cert, key, token or pid)", k)
	}
	return err
}

// target builds the client for spec.
func (spec TargetSpec) target() (*load.Target, error) {
	var tlsConfig *tls.Config
	if strings.HasPrefix(spec.URL, "https:") {
		var err error
		tlsConfig, err = rest.TLSConfigFor(&rest.Config{Host: spec.URL, TLSClientConfig: rest.TLSClientConfig{
			CAFile: spec.CAFile, CertFile: spec.CertFile, KeyFile: spec.KeyFile,
		}})
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", spec.Name, err)
		}
		if tlsConfig == nil {
			tlsConfig = &tls.Config{}
		}
	}
	t := load.NewTarget(spec.Name, strings.TrimSuffix(spec.URL, "/"), tlsConfig, spec.PID)
	if spec.TokenFile != "" {
		token, err := os.ReadFile(spec.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", spec.Name, err)
		}
		t.Header = http.Header{"Authorization": {"Bearer " + strings.TrimSpace(string(token))}}
	}
	return t, nil
}

// startExtras tells the user where the cluster's credentials are, so that
// another proxy can be put in front of it, and waits for each extra target
// to serve SmallPath.
func (r *Rig) startExtras(ctx context.Context) ([]*load.Target, error) {
	if len(r.opts.Extras) == 0 {
		return nil, nil
	}
	_, _ = fmt.Fprintf(r.opts.Log, "extra targets: upstream kubeconfig (user %s, may impersonate) %s; bench user certificate %s and key %s, signed by %s; waiting up to %s for %s\n",
		"kip-proxy", r.Stack.UpstreamKubeconfig, r.path("bench-user.crt"), r.path("bench-user.key"), r.clientCAFile, r.opts.ExtrasWait, SmallPath)
	var targets []*load.Target
	for _, spec := range r.opts.Extras {
		t, err := spec.target()
		if err != nil {
			return nil, err
		}
		waitCtx, cancel := context.WithTimeout(ctx, r.opts.ExtrasWait)
		err = waitReady(waitCtx, t, nil)
		cancel()
		if err != nil {
			return nil, err
		}
		targets = append(targets, t)
		r.Setup = append(r.Setup, fmt.Sprintf("%s: %s (from --target)", spec.Name, spec.URL))
	}
	return targets, nil
}
