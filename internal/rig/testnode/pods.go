package testnode

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
)

// PodIP is the address every Pod on a test node reports: its ports are
// this machine's loopback ports.
const PodIP = "127.0.0.1"

// pods runs the Pods bound to the node.
type pods struct {
	node *Node

	mu      sync.Mutex
	running map[string]*pod // by namespace/name
	closed  bool            // set by stopAll: no more Pods start
}

// pod is one running Pod: a working directory, a log directory and a
// process per container.
type pod struct {
	namespace, name string
	uid             types.UID
	dir, logDir     string
	containers      map[string]*container
	// ctx is the lifetime of the Pod's processes, containers and exec
	// sessions alike.
	ctx    context.Context
	cancel context.CancelFunc
}

func newPods(n *Node) *pods {
	return &pods{node: n, running: map[string]*pod{}}
}

func podKey(namespace, name string) string { return namespace + "/" + name }

// run watches the Pods whose spec.nodeName is the node and waits for the
// first list, so that Pods created before Start run too.
func (m *pods) run(ctx context.Context) error {
	factory := informers.NewSharedInformerFactoryWithOptions(m.node.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = "spec.nodeName=" + m.node.name
		}))
	informer := factory.Core().V1().Pods().Informer()
	// The handlers run one at a time, in order, on the informer's goroutine.
	_, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { m.sync(obj) },
		UpdateFunc: func(_, obj any) { m.sync(obj) },
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				m.remove(p.Namespace, p.Name, p.UID)
			}
		},
	})
	if err != nil {
		return err
	}
	factory.Start(m.node.ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		return fmt.Errorf("node %s: the pod list did not arrive: %w", m.node.name, ctx.Err())
	}
	return nil
}

func (m *pods) sync(obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if p.DeletionTimestamp != nil {
		// A kubelet confirms a graceful deletion once its containers are
		// gone; until then the Pod stays, Terminating.
		m.remove(p.Namespace, p.Name, p.UID)
		m.confirmDeletion(p)
		return
	}
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return
	}
	running, err := m.ensureRunning(p)
	if err != nil {
		m.node.logf("starting pod %s/%s: %v", p.Namespace, p.Name, err)
		return
	}
	if p.Status.Phase != corev1.PodRunning || p.Status.PodIP != PodIP {
		m.reportRunning(p, running)
	}
}

// ensureRunning starts the Pod's containers unless they already run.
func (m *pods) ensureRunning(p *corev1.Pod) (*pod, error) {
	key := podKey(p.Namespace, p.Name)
	m.mu.Lock()
	existing := m.running[key]
	m.mu.Unlock()
	if existing != nil {
		if existing.uid == p.UID {
			return existing, nil
		}
		// A Pod of the same name replaced the one we run.
		m.remove(p.Namespace, p.Name, existing.uid)
	}

	// Logs live apart from the working directory, where exec and kubectl
	// cp would see them.
	base := fmt.Sprintf("%s_%s_%s", p.Namespace, p.Name, p.UID)
	running := &pod{
		namespace: p.Namespace, name: p.Name, uid: p.UID,
		dir:        filepath.Join(m.node.dir, "pods", base),
		logDir:     filepath.Join(m.node.dir, "logs", base),
		containers: map[string]*container{},
	}
	for _, dir := range []string{running.dir, running.logDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
	}
	running.ctx, running.cancel = context.WithCancel(m.node.ctx)
	for _, spec := range p.Spec.Containers {
		c, err := startContainer(running, spec)
		if err != nil {
			running.stop()
			return nil, fmt.Errorf("container %s: %w", spec.Name, err)
		}
		running.containers[spec.Name] = c
	}
	m.mu.Lock()
	closed := m.closed
	if !closed {
		m.running[key] = running
	}
	m.mu.Unlock()
	if closed {
		running.stop()
		return nil, fmt.Errorf("node %s is stopping", m.node.name)
	}
	m.node.logf("started pod %s (%d containers) in %s", key, len(running.containers), running.dir)
	return running, nil
}

// reportRunning sets the status a kubelet reports for a Pod whose
// containers all run; kubectl exec, attach and port-forward insist on it.
func (m *pods) reportRunning(p *corev1.Pod, running *pod) {
	pods := m.node.client.CoreV1().Pods(p.Namespace)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ctx, cancel := context.WithTimeout(m.node.ctx, 10*time.Second)
		defer cancel()
		current, err := pods.Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if current.UID != p.UID {
			return nil
		}
		setRunningStatus(&current.Status, current.Spec.Containers, running)
		_, err = pods.UpdateStatus(ctx, current, metav1.UpdateOptions{})
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) && m.node.ctx.Err() == nil {
		m.node.logf("reporting pod %s/%s running: %v", p.Namespace, p.Name, err)
	}
}

func setRunningStatus(s *corev1.PodStatus, specs []corev1.Container, running *pod) {
	now := metav1.Now()
	s.Phase = corev1.PodRunning
	s.HostIP, s.PodIP = PodIP, PodIP
	s.HostIPs, s.PodIPs = []corev1.HostIP{{IP: PodIP}}, []corev1.PodIP{{IP: PodIP}}
	if s.StartTime == nil {
		s.StartTime = &now
	}
	s.Conditions = nil
	for _, t := range []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.PodScheduled, corev1.ContainersReady, corev1.PodReady} {
		s.Conditions = append(s.Conditions, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	s.ContainerStatuses = nil
	for _, spec := range specs {
		started := true
		c := running.containers[spec.Name]
		s.ContainerStatuses = append(s.ContainerStatuses, corev1.ContainerStatus{
			Name:        spec.Name,
			Image:       spec.Image,
			ImageID:     spec.Image,
			ContainerID: "testnode://" + c.id,
			Ready:       true,
			Started:     &started,
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(c.started)}},
		})
	}
}

// confirmDeletion deletes a Terminating Pod for good, as a kubelet does
// once it has stopped the containers.
func (m *pods) confirmDeletion(p *corev1.Pod) {
	ctx, cancel := context.WithTimeout(m.node.ctx, 10*time.Second)
	defer cancel()
	uid := p.UID
	zero := int64(0)
	err := m.node.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero,
		Preconditions:      &metav1.Preconditions{UID: &uid},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && m.node.ctx.Err() == nil {
		m.node.logf("deleting pod %s/%s: %v", p.Namespace, p.Name, err)
	}
}

// remove stops the Pod's containers and removes its directory, if the Pod
// running under that name has that uid.
func (m *pods) remove(namespace, name string, uid types.UID) {
	key := podKey(namespace, name)
	m.mu.Lock()
	p := m.running[key]
	if p == nil || p.uid != uid {
		m.mu.Unlock()
		return
	}
	delete(m.running, key)
	m.mu.Unlock()
	p.stop()
	_ = os.RemoveAll(p.dir)
	_ = os.RemoveAll(p.logDir)
	m.node.logf("stopped pod %s", key)
}

// get returns the running Pod namespace/name.
func (m *pods) get(namespace, name string) (*pod, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.running[podKey(namespace, name)]
	return p, ok
}

// container returns a running container by namespace, Pod and name.
func (m *pods) container(namespace, podName, name string) (*container, bool) {
	p, ok := m.get(namespace, podName)
	if !ok {
		return nil, false
	}
	c, ok := p.containers[name]
	return c, ok
}

func (m *pods) stopAll() {
	m.mu.Lock()
	all := m.running
	m.running, m.closed = map[string]*pod{}, true
	m.mu.Unlock()
	for _, p := range all {
		p.stop()
	}
}

// stop kills every process of the Pod and waits, within reason, for its
// containers to be gone.
func (p *pod) stop() {
	p.cancel()
	for _, c := range p.containers {
		c.stop()
	}
}
