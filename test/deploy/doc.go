// Package deploy tests what an operator installs: the container image's
// build, the Helm chart in deploy/helm/kip and the manifests rendered from
// it. The chart is rendered with Helm's Go library, every object is checked
// by a real kube-apiserver with server-side dry run, and kip runs with only
// the rights the chart grants.
package deploy
