package gateway

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/kip-proxy/kip/internal/rig/harness"
)

// clustersPath is the list of the clusters a caller may reach.
const clustersPath = "/apis/login.kip.dev/v1alpha1/clusters"

// clusterList is a login.kip.dev/v1alpha1 ClusterList as a client outside
// kip reads it.
type clusterList struct {
	Kind       string `json:"kind"`
	APIVersion string `json:"apiVersion"`
	Items      []struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	} `json:"items"`
}

// TestDiscovery lists the clusters as callers with kip-wide credentials,
// beside an entry whose policy lets in one group only, and as callers
// whose credentials are valid at one cluster only, which the list does
// not accept.
func TestDiscovery(t *testing.T) {
	guarded := harness.UniqueName("listed")
	data, err := gw.entry(gw.members[beta], gw.members[beta].kipCred, &access{Groups: []string{"listers"}})
	if err != nil {
		t.Fatal(err)
	}
	removeEntryAfter(t, guarded+".kubeconfig")
	if err := gw.putEntry(guarded+".kubeconfig", data); err != nil {
		t.Fatal(err)
	}
	lister := gw.httpClient(userTLS(t, harness.UniqueName("lister"), "listers"), "h2")
	harness.Eventually(t, registryTimeout, func() error {
		names, err := listClusters(lister)
		if err != nil {
			return err
		}
		if !slices.Contains(names, guarded) {
			return errorf("the list %v lacks %s", names, guarded)
		}
		return nil
	})

	alphaCert, err := gw.members[alpha].clusterCert(harness.UniqueName("alpha-only"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name        string
		cert        tls.Certificate
		token       string
		want        int
		wantGuarded bool
	}{
		{"in the guarded entry's group", userTLS(t, harness.UniqueName("lister"), "listers"), "", http.StatusOK, true},
		{"in another group", userTLS(t, harness.UniqueName("dev"), "devs"), "", http.StatusOK, false},
		{"in no group", userTLS(t, harness.UniqueName("loner")), "", http.StatusOK, false},
		{"a cluster's own client certificate", alphaCert, "", http.StatusUnauthorized, false},
		{"a ServiceAccount token", tls.Certificate{}, gw.members[alpha].kipCred.token, http.StatusUnauthorized, false},
		{"no credential", tls.Certificate{}, "", http.StatusUnauthorized, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := mustGet(t, gw.httpClient(c.cert, "h2"), clustersPath, c.token)
			if c.want != http.StatusOK {
				wantStatus(t, a, c.want)
				return
			}
			var list clusterList
			if a.code != http.StatusOK || json.Unmarshal([]byte(a.body), &list) != nil {
				t.Fatalf("got %s, want 200 with a ClusterList", a)
			}
			if list.Kind != "ClusterList" || list.APIVersion != "login.kip.dev/v1alpha1" {
				t.Fatalf("got a %s %s, want a login.kip.dev/v1alpha1 ClusterList", list.APIVersion, list.Kind)
			}
			var names []string
			for _, item := range list.Items {
				names = append(names, item.Metadata.Name)
			}
			if !slices.IsSorted(names) {
				t.Errorf("the list %v is not sorted by name", names)
			}
			for _, name := range clusterNames {
				if !slices.Contains(names, name) {
					t.Errorf("the list %v lacks %s, which has no policy", names, name)
				}
			}
			if got := slices.Contains(names, guarded); got != c.wantGuarded {
				t.Errorf("the list %v holds %s: %t, want %t", names, guarded, got, c.wantGuarded)
			}
		})
	}
}

// listClusters returns the names the list holds for client's caller.
func listClusters(client *http.Client) ([]string, error) {
	a, err := get(client, clustersPath, "")
	if err != nil {
		return nil, err
	}
	var list clusterList
	if a.code != http.StatusOK || json.Unmarshal([]byte(a.body), &list) != nil {
		return nil, errorf("listing the clusters: %s", a)
	}
	var names []string
	for _, item := range list.Items {
		names = append(names, item.Metadata.Name)
	}
	return names, nil
}
