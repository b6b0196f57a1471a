// Package v1alpha1 is the login.kip.dev/v1alpha1 API: the
// TokenCredentialRequest that exchanges an identity provider's token for a
// short-lived client certificate signed by kip's own CA. kip serves it
// itself, as the one resource an unauthenticated caller may reach; clients
// use these types with client-go's REST client. A kip gateway also serves
// the ClusterList of the clusters an authenticated caller may reach.
//
// +k8s:deepcopy-gen=package
// +groupName=login.kip.dev
package v1alpha1
