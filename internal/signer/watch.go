package signer

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// watch follows the one Secret until ctx is done, and meanwhile competes
// for the Lease that decides who rotates it. The informer lists and watches
// in kip's namespace with a field selector on the name, which is all kip's
// RBAC grants: get, list and watch on that Secret alone.
func (s *secretSource) watch(ctx context.Context) {
	go s.campaign(ctx)
	byName := fields.OneTermEqualSelector("metadata.name", s.name).String()
	informer := coreinformers.NewFilteredSecretInformer(s.client, s.namespace, 0, cache.Indexers{},
		func(o *metav1.ListOptions) { o.FieldSelector = byName })
	_, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    s.onSecret,
		UpdateFunc: func(_, obj any) { s.onSecret(obj) },
		DeleteFunc: s.onDelete,
	})
	if err != nil {
		klog.ErrorS(err, "Cannot watch the signer CA Secret", "secret", s.String())
		return
	}
	informer.RunWithContext(ctx)
}
