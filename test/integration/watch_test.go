package integration

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/kip-proxy/kip/internal/rig/harness"
)

// TestWatchSeesNewObjects proves kip flushes a watch at once: the event for
// an object created after the watch started reaches the watcher while the
// response is still open. It waits for the event and asserts no timing.
func TestWatchSeesNewObjects(t *testing.T) {
	for _, proto := range []string{"http/1.1", "h2"} {
		t.Run(proto, func(t *testing.T) {
			ns := createNamespace(t)
			user := harness.UniqueName("watcher")
			grant(t, ns, userSubject(user), configMapRules...)
			cfg := stack.UserConfigFor(user)
			cfg.NextProtos = []string{proto}
			client := kubernetes.NewForConfigOrDie(cfg)

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			w, err := client.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()

			name := harness.UniqueName("watched")
			_, err = adminClient(t).CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for {
				select {
				case ev, ok := <-w.ResultChan():
					if !ok {
						t.Fatal("watch closed before the event arrived")
					}
					if cm, isCM := ev.Object.(*corev1.ConfigMap); isCM && ev.Type == watch.Added && cm.Name == name {
						return
					}
				case <-ctx.Done():
					t.Fatal("no ADDED event for the new ConfigMap: the watch was not flushed")
				}
			}
		})
	}
}
