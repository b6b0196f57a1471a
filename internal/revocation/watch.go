package revocation

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/kip-proxy/kip/internal/metrics"
)

// Source is the ConfigMap that holds the list.
type Source struct {
	Client          kubernetes.Interface
	Namespace, Name string
}

func (s Source) String() string { return s.Namespace + "/" + s.Name }

// Follow keeps list as the ConfigMap says until ctx ends, and m's count
// of entries in force current. The informer lists and watches kip's
// namespace with a field selector on the name, which is all kip's RBAC
// grants: get, list and watch on that ConfigMap alone. A ConfigMap that
// does not exist is an empty list; once read, a list is kept through any
// outage of the API until the watch resumes.
func (s Source) Follow(ctx context.Context, list *List, m *metrics.Revocations) {
	byName := fields.OneTermEqualSelector("metadata.name", s.Name).String()
	informer := coreinformers.NewFilteredConfigMapInformer(s.Client, s.Namespace, 0, cache.Indexers{},
		func(o *metav1.ListOptions) { o.FieldSelector = byName })
	set := func(obj any) {
		cm, ok := obj.(*corev1.ConfigMap)
		if !ok {
			return
		}
		s.set(list, cm.Data)
	}
	handled, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    set,
		UpdateFunc: func(_, obj any) { set(obj) },
		DeleteFunc: func(any) { s.set(list, nil) },
	})
	if err != nil {
		klog.ErrorS(err, "Cannot watch the revocation list", "configMap", s.String())
		return
	}
	go informer.RunWithContext(ctx)
	// No ConfigMap calls no handler: the first sync, once its objects
	// have reached the handler, is what says the list is read.
	if cache.WaitForCacheSync(ctx.Done(), handled.HasSynced) && !list.Loaded() {
		s.set(list, nil)
	}
	s.countInForce(ctx, list, m)
}

func (s Source) set(list *List, data map[string]string) {
	for _, err := range list.Set(data) {
		klog.ErrorS(err, "Revocation list entry", "configMap", s.String())
	}
	klog.V(2).InfoS("Read the revocation list", "configMap", s.String(), "entries", len(data))
}

// countInForce updates the count of entries in force every few seconds,
// since entries leave force as time passes, not only when the list
// changes.
func (s Source) countInForce(ctx context.Context, list *List, m *metrics.Revocations) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		m.SetEntries(list.InForce())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
