// Package kubeconfig builds the kubeconfig of `kip kubeconfig`: one
// cluster (kip's URL and serving CA), one user whose credentials come from
// the `kip login` exec plugin, and one context joining them; for a kip
// gateway, one cluster entry and context per cluster, all sharing that one
// user, so one sign-in serves them all.
package kubeconfig
