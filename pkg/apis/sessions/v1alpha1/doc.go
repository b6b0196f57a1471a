// Package v1alpha1 is the sessions.kip.dev/v1alpha1 API: the recorded
// exec, attach and port-forward sessions kip relayed, which kip serves
// itself, read-only, from its recordings. Who may list a namespace's
// sessions or read a recording is decided by the upstream's RBAC on the
// resources sessions and sessions/recording; clients use these types with
// client-go's REST client.
//
// +k8s:deepcopy-gen=package
// +groupName=sessions.kip.dev
package v1alpha1
