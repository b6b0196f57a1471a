package clusters

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// DefaultSecretLabel marks the Secrets that register a cluster; its value
// is the cluster's name.
const DefaultSecretLabel = "kip.dev/cluster"

// SecretKey is the key of a cluster Secret's kubeconfig.
const SecretKey = "kubeconfig"

// SecretSource registers a cluster for every Secret in Namespace that
// carries Label, and follows them through an informer, so that adding,
// rotating or deleting a Secret takes effect without a restart.
type SecretSource struct {
	Client    kubernetes.Interface
	Namespace string
	// Label marks cluster Secrets; DefaultSecretLabel when empty.
	Label  string
	Resync time.Duration
	// OnChange runs one snapshot at a time, for each that differs from
	// the last.
	OnChange func(Snapshot)

	mu   sync.Mutex // one snapshot at a time: informer handlers may overlap
	last lastSnapshot
}

// Run lists and watches the Secrets until ctx ends. It returns an error
// only if the first list does not complete before ctx's deadline.
func (s *SecretSource) Run(ctx context.Context) error {
	label := s.label()
	factory := informers.NewSharedInformerFactoryWithOptions(s.Client, s.Resync,
		informers.WithNamespace(s.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = label }))
	secrets := factory.Core().V1().Secrets()
	informer, lister := secrets.Informer(), secrets.Lister()
	changed := func() { s.publish(lister.Secrets(s.Namespace).List(labels.Everything())) }
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { changed() },
		UpdateFunc: func(any, any) { changed() },
		DeleteFunc: func(any) { changed() },
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		if errors.Is(context.Cause(ctx), context.Canceled) {
			return nil // stopped before the first list: a shutdown, not a fault
		}
		return fmt.Errorf("listing the cluster Secrets in %s: %w", s.Namespace, context.Cause(ctx))
	}
	changed() // also when there is no Secret at all
	<-ctx.Done()
	return nil
}

func (s *SecretSource) label() string {
	if s.Label == "" {
		return DefaultSecretLabel
	}
	return s.Label
}

// publish hands over the snapshot the Secrets make, unless it equals the
// last one.
func (s *SecretSource) publish(list []*corev1.Secret, err error) {
	if err != nil {
		return
	}
	byName := map[string][]Cluster{}
	var refused []Refusal
	for _, sec := range list {
		c, err := s.fromSecret(sec)
		if err != nil {
			refused = append(refused, Refusal{Name: c.Name, Origin: c.Origin, Reason: err.Error()})
			continue
		}
		byName[c.Name] = append(byName[c.Name], c)
	}
	clusters, refused := unique(byName, refused)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last.handOver(Snapshot{Clusters: clusters, Refused: refused}, s.OnChange)
}

// fromSecret reads one cluster Secret. The returned Cluster carries name
// and origin even when refused, for the log line.
func (s *SecretSource) fromSecret(sec *corev1.Secret) (Cluster, error) {
	c := Cluster{Name: sec.Labels[s.label()], Origin: "secret " + sec.Namespace + "/" + sec.Name}
	if err := ValidName(c.Name); err != nil {
		return c, fmt.Errorf("the label %s: %w", s.label(), err)
	}
	data, ok := sec.Data[SecretKey]
	if !ok {
		return c, fmt.Errorf("the Secret has no %q key", SecretKey)
	}
	c.digest = sha256.Sum256(data)
	kc, err := clientcmd.Load(data)
	if err != nil {
		return c, fmt.Errorf("%q is not a kubeconfig: %w", SecretKey, err)
	}
	if err := checkSelfContained(kc); err != nil {
		return c, err
	}
	return c, c.configure(kc)
}

// checkSelfContained refuses file references in a Secret's kubeconfig:
// they would be read from kip's own file system, where a tokenFile could
// name kip's ServiceAccount token and send it to another cluster.
func checkSelfContained(kc *clientcmdapi.Config) error {
	for name, c := range kc.Clusters {
		if c.CertificateAuthority != "" {
			return fmt.Errorf("cluster %q names the file %s; a cluster Secret must carry certificate-authority-data", name, c.CertificateAuthority)
		}
	}
	for name, u := range kc.AuthInfos {
		if u.TokenFile != "" || u.ClientCertificate != "" || u.ClientKey != "" {
			return fmt.Errorf("user %q names a file; a cluster Secret must carry its token or client-certificate-data and client-key-data", name)
		}
	}
	return nil
}
