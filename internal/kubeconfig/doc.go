// Package kubeconfig builds the kubeconfig of `kip kubeconfig`: one
// cluster (kip's URL and serving CA), one user whose credentials come from
// the `kip login` exec plugin, and one context joining them.
package kubeconfig
