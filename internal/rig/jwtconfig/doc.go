// Package jwtconfig writes the AuthenticationConfiguration the rig gives
// kube-apiserver and kip for its OpenID providers (Hydra, and the
// device-flow provider), so both providers are trusted with the same claim
// mappings and a test's expectations hold for either.
package jwtconfig
