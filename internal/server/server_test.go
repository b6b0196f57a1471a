package server

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/endpoints/request"
)

// TestLongRunningRequests pins which requests escape the short-request
// timeout: every streaming verb, including the proxy subresources that
// kube-apiserver will not proxy to loopback test nodes.
func TestLongRunningRequests(t *testing.T) {
	c := NewGenericConfig()
	resolver := &request.RequestInfoFactory{APIPrefixes: sets.NewString("api", "apis"), GrouplessAPIPrefixes: sets.NewString("api")}
	for _, tc := range []struct {
		method, path string
		long         bool
	}{
		{http.MethodGet, "/api/v1/namespaces/ns/configmaps?watch=true", true},
		{http.MethodGet, "/api/v1/watch/namespaces/ns/configmaps", true},
		{http.MethodPost, "/api/v1/namespaces/ns/pods/p/exec?command=sh", true},
		{http.MethodGet, "/api/v1/namespaces/ns/pods/p/exec?command=sh", true},
		{http.MethodPost, "/api/v1/namespaces/ns/pods/p/attach", true},
		{http.MethodPost, "/api/v1/namespaces/ns/pods/p/portforward", true},
		{http.MethodGet, "/api/v1/namespaces/ns/pods/p/log?follow=true", true},
		{http.MethodGet, "/api/v1/namespaces/ns/pods/p/proxy/metrics", true},
		{http.MethodGet, "/api/v1/namespaces/ns/services/s:80/proxy/", true},
		{http.MethodGet, "/api/v1/nodes/n/proxy/stats/summary", true},
		{http.MethodGet, "/api/v1/namespaces/ns/configmaps", false},
		{http.MethodGet, "/api/v1/namespaces/ns/pods/p", false},
		{http.MethodPost, "/api/v1/namespaces/ns/configmaps", false},
		{http.MethodGet, "/version", false},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, nil)
			info, err := resolver.NewRequestInfo(req)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.LongRunningFunc(req, info); got != tc.long {
				t.Fatalf("long-running = %v, want %v (verb %q, subresource %q)", got, tc.long, info.Verb, info.Subresource)
			}
		})
	}
}
