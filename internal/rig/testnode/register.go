package testnode

import (
	"context"
	"crypto/tls"
	"fmt"
	goruntime "runtime"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kip-proxy/kip/internal/rig/pki"
)

// WebSocketFeature is the node-declared feature that makes kube-apiserver
// (1.36 and later, with its feature gate of the same name on, the default)
// pass WebSocket exec, attach and port-forward through to the kubelet.
const WebSocketFeature = "ExtendWebSocketsToKubelet"

// kubeletVersion is what the node reports; it is the version kip is tested
// against.
const kubeletVersion = "v1.37.2"

// servingTLS is a self-signed serving configuration. kube-apiserver
// verifies a kubelet's certificate only when given
// --kubelet-certificate-authority, which the test cluster is not.
func (n *Node) servingTLS() (*tls.Config, error) {
	ca, err := pki.NewCA("kip-testnode-"+n.name, 24*time.Hour)
	if err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := ca.IssueServing([]string{"127.0.0.1", "localhost"}, 24*time.Hour)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	// HTTP/1.1 only, as a kubelet's streaming endpoints need; logs work over
	// either version.
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}, nil
}

// register creates or takes over the Node object and publishes where the
// node listens, that it is ready and, if asked, its WebSocket support.
func (n *Node) register(ctx context.Context, port int) error {
	nodes := n.client.CoreV1().Nodes()
	node, err := nodes.Get(ctx, n.name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		node = &corev1.Node{ObjectMeta: metav1.ObjectMeta{
			Name:   n.name,
			Labels: map[string]string{corev1.LabelHostname: n.name, corev1.LabelOSStable: goruntime.GOOS, corev1.LabelArchStable: goruntime.GOARCH},
		}}
		// Node status may be set on create.
		n.setStatus(&node.Status, port)
		_, err = nodes.Create(ctx, node, metav1.CreateOptions{})
	case err == nil:
		n.setStatus(&node.Status, port)
		_, err = nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("registering node %s: %w", n.name, err)
	}
	return nil
}

// setStatus fills in what kube-apiserver reads to reach a kubelet, and what
// kubectl and schedulers read to trust it. The Ready condition is not
// renewed: without kube-controller-manager nobody marks a silent node
// unready.
func (n *Node) setStatus(s *corev1.NodeStatus, port int) {
	now := metav1.Now()
	s.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: "127.0.0.1"},
		{Type: corev1.NodeHostName, Address: n.name},
	}
	s.DaemonEndpoints.KubeletEndpoint.Port = int32(port)
	s.Conditions = []corev1.NodeCondition{{
		Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
		Message: "test node is ready", LastHeartbeatTime: now, LastTransitionTime: now,
	}}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("8"),
		corev1.ResourceMemory: resource.MustParse("16Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	s.Capacity, s.Allocatable = capacity, capacity
	s.NodeInfo = corev1.NodeSystemInfo{
		KubeletVersion: kubeletVersion, OperatingSystem: goruntime.GOOS, Architecture: goruntime.GOARCH,
		ContainerRuntimeVersion: "testnode://" + kubeletVersion,
	}
	// kube-apiserver reads status.declaredFeatures for each streaming
	// request; the list must be sorted.
	s.DeclaredFeatures = nil
	if n.websocket {
		s.DeclaredFeatures = []string{WebSocketFeature}
	}
}

// unregister deletes the Node object so that a later Start with the same
// name begins clean. It is best effort: the cluster may be gone already.
func (n *Node) unregister() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = n.client.CoreV1().Nodes().Delete(ctx, n.name, metav1.DeleteOptions{})
}
