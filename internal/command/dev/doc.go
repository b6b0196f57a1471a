// Package dev is the kip dev command: kip in front of a local throwaway
// control plane and identity provider, built from the rig. It is a package
// of its own so that the serving and client commands import no rig package.
package dev
