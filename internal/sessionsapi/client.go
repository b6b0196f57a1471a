package sessionsapi

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/sessions"
	sessionsv1alpha1 "github.com/kip-proxy/kip/pkg/apis/sessions/v1alpha1"
)

// Client reads recorded sessions from kip's sessions.kip.dev API, with the
// credentials of a kubeconfig, as kubectl would.
type Client struct {
	rest rest.Interface
	host string
}

// NewClient returns a Client for the kip cfg reaches (in a gateway, its
// server URL names the cluster: https://kip/clusters/<name>).
func NewClient(cfg *rest.Config) (*Client, error) {
	scheme := runtime.NewScheme()
	if err := sessionsv1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &sessionsv1alpha1.SchemeGroupVersion
	c.APIPath = "/apis"
	c.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("building a client for kip at %s: %w", cfg.Host, err)
	}
	return &Client{rest: rc, host: cfg.Host}, nil
}

// List lists the sessions f selects in namespace (all namespaces when
// empty), newest first. f's Cluster is the one the kubeconfig reaches.
func (c *Client) List(ctx context.Context, namespace string, f sessions.Filter) (*sessionsv1alpha1.SessionList, error) {
	req := c.rest.Get().Namespace(namespace).Resource(sessionsv1alpha1.Resource)
	if f.User != "" {
		req = req.Param("user", f.User)
	}
	if f.Pod != "" {
		req = req.Param("pod", f.Pod)
	}
	if !f.Since.IsZero() {
		req = req.Param("since", f.Since.UTC().Format(time.RFC3339))
	}
	if !f.Until.IsZero() {
		req = req.Param("until", f.Until.UTC().Format(time.RFC3339))
	}
	if f.Limit > 0 {
		req = req.Param("limit", strconv.Itoa(f.Limit))
	}
	list := &sessionsv1alpha1.SessionList{}
	if err := req.Do(ctx).Into(list); err != nil {
		return nil, fmt.Errorf("listing sessions at %s: %w", c.host, err)
	}
	return list, nil
}

// Get reads the Session id of namespace.
func (c *Client) Get(ctx context.Context, namespace, id string) (*sessionsv1alpha1.Session, error) {
	s := &sessionsv1alpha1.Session{}
	if err := c.rest.Get().Namespace(namespace).Resource(sessionsv1alpha1.Resource).Name(id).Do(ctx).Into(s); err != nil {
		return nil, fmt.Errorf("reading session %s/%s at %s: %w", namespace, id, c.host, err)
	}
	return s, nil
}

// Recording streams the recording of session id of namespace, as kip
// wrote and sealed it.
func (c *Client) Recording(ctx context.Context, namespace, id string) (io.ReadCloser, error) {
	rc, err := c.rest.Get().Namespace(namespace).Resource(sessionsv1alpha1.Resource).Name(id).
		SubResource(sessionsv1alpha1.RecordingSubresource).
		SetHeader("Accept", sessionsv1alpha1.RecordingContentType).Stream(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the recording of session %s/%s at %s: %w", namespace, id, c.host, err)
	}
	return rc, nil
}
