package gateway

import (
	"net/http"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	"k8s.io/apiserver/pkg/endpoints/request"

	loginv1alpha1 "github.com/kip-proxy/kip/pkg/apis/login/v1alpha1"
)

// ListPath is where a gateway lists the clusters the caller may reach.
const ListPath = "/apis/" + loginv1alpha1.GroupName + "/v1alpha1/" + loginv1alpha1.ClustersResource

// NewClusterList serves GET ListPath: a ClusterList of the clusters the
// caller may reach, sorted by name. It goes behind an authentication
// filter of its own whose authenticator accepts only identities valid for
// every cluster (kip's certificates, OIDC and webhook tokens,
// --client-ca-file): a cluster's own client CA or a token only one cluster
// can review says nothing about the others. A request that reaches it
// without an authenticated user is refused. reachable says which clusters
// the policy lets a user reach; nothing else is listed, so a refused
// cluster's name is never shown to a caller it refuses.
func NewClusterList(reachable func(user.Info) []string) http.Handler {
	if reachable == nil {
		// Fail closed at construction, not with the first caller.
		panic("gateway: the cluster list needs a policy")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Authentication comes first, so that an anonymous caller learns
		// nothing, not even which methods exist.
		u, ok := request.UserFrom(r.Context())
		if !ok || u == nil || u.GetName() == "" {
			writeStatus(w, http.StatusUnauthorized, metav1.StatusReasonUnauthorized, "Unauthorized")
			return
		}
		if r.URL.Path != ListPath {
			notFound(w, "the path names no kip resource")
			return
		}
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			writeStatus(w, http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed,
				"the cluster list is read with GET only")
			return
		}
		// The answer is this caller's own: no shared cache may keep it.
		w.Header().Set("Cache-Control", "no-cache, private")
		responsewriters.WriteRawJSON(http.StatusOK, clusterList(reachable(u)), w)
	})
}

// clusterList is names as a ClusterList, sorted, with no duplicates and
// an empty (never null) items array.
func clusterList(names []string) *loginv1alpha1.ClusterList {
	names = slices.Clone(names)
	slices.Sort(names)
	names = slices.Compact(names)
	list := &loginv1alpha1.ClusterList{
		TypeMeta: metav1.TypeMeta{APIVersion: loginv1alpha1.SchemeGroupVersion.String(), Kind: "ClusterList"},
		Items:    make([]loginv1alpha1.Cluster, 0, len(names)),
	}
	for _, n := range names {
		list.Items = append(list.Items, loginv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: n}})
	}
	return list
}
