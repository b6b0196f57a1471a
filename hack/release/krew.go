package main

import (
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

// The parts of krew's Plugin manifest (krew.googlecontainertools.github.com
// /v1alpha2) that kip fills in; krew's own validation runs on it when the
// release test installs kip with krew.
type krewPlugin struct {
	APIVersion string       `json:"apiVersion"`
	Kind       string       `json:"kind"`
	Metadata   krewMetadata `json:"metadata"`
	Spec       krewSpec     `json:"spec"`
}

type krewMetadata struct {
	Name string `json:"name"`
}

type krewSpec struct {
	Version          string         `json:"version"`
	Homepage         string         `json:"homepage"`
	ShortDescription string         `json:"shortDescription"`
	Description      string         `json:"description"`
	Caveats          string         `json:"caveats"`
	Platforms        []krewPlatform `json:"platforms"`
}

type krewPlatform struct {
	Selector krewSelector `json:"selector"`
	URI      string       `json:"uri"`
	SHA256   string       `json:"sha256"`
	Files    []krewFile   `json:"files"`
	Bin      string       `json:"bin"`
}

type krewSelector struct {
	MatchLabels map[string]string `json:"matchLabels"`
}

type krewFile struct {
	From string `json:"from"`
	To   string `json:"to"`
}

const (
	homepage        = "https://github.com/kip-proxy/kip"
	krewDescription = `kip is a Kubernetes impersonation proxy: it stands in front of an API
server you cannot reconfigure (EKS, GKE, AKS, ...), signs users in with your
OIDC identity provider or webhook tokens, and forwards their requests as
them. This plugin is kip's client side:

  kubectl kip kubeconfig   write a kubeconfig that signs in through kip
  kubectl kip login        kubectl's credential plugin: browser or device
                           sign-in, a short-lived client certificate, a cache
  kubectl kip whoami       the identity the API server sees
`
	krewCaveats = `Kubeconfigs written by "kubectl kip kubeconfig" run "kubectl kip login",
so they keep working across "kubectl krew upgrade".
`
)

// krewManifest is the plugin manifest of the release in sums (name →
// SHA-256, as in the checksums file), with each archive downloaded from
// downloadURL/<archive>.
func krewManifest(version, downloadURL string, sums map[string]string) ([]byte, error) {
	p := krewPlugin{
		APIVersion: "krew.googlecontainertools.github.com/v1alpha2",
		Kind:       "Plugin",
		Metadata:   krewMetadata{Name: "kip"},
		Spec: krewSpec{
			Version: version, Homepage: homepage,
			ShortDescription: "Sign in to clusters behind the kip proxy",
			Description:      krewDescription, Caveats: krewCaveats,
		},
	}
	for _, pl := range platforms {
		archive := archiveName(version, pl)
		sum, ok := sums[archive]
		if !ok {
			return nil, fmt.Errorf("the checksums name no %s: is this the checksums file of %s?", archive, version)
		}
		p.Spec.Platforms = append(p.Spec.Platforms, krewPlatform{
			Selector: krewSelector{MatchLabels: map[string]string{"os": pl.OS, "arch": pl.Arch}},
			URI:      strings.TrimSuffix(downloadURL, "/") + "/" + archive,
			SHA256:   sum,
			Files:    []krewFile{{From: pl.binary(), To: "."}, {From: "LICENSE", To: "."}},
			Bin:      pl.binary(),
		})
	}
	return yaml.Marshal(p)
}
