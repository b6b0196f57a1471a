package soak

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream" //nolint:staticcheck // client-go v0.37's portforward still takes this Dialer
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
)

// streamBytes is what each exec and port-forward sends and expects back.
const streamBytes = 64 << 10

// streams runs op every d, taking turns over the target Pods (one on
// each kind of node) and the transports (WebSocket, kubectl's default,
// and SPDY, its fallback).
func (tr *traffic) streams(ctx context.Context, d time.Duration, k kind, op func(ctx context.Context, pod string, websocket bool) error) {
	for turn := 0; ctx.Err() == nil; turn++ {
		pod := tr.r.targets[turn%len(tr.r.targets)]
		websocket := (turn/len(tr.r.targets))%2 == 0
		opCtx, cancel := context.WithTimeout(ctx, streamTimeout)
		err := op(opCtx, pod, websocket)
		cancel()
		tr.record(ctx, k, err)
		pause(ctx, d)
	}
}

// execOnce runs cat in pod, sends it streamBytes on stdin and expects
// them back on stdout.
func (tr *traffic) execOnce(ctx context.Context, pod string, websocket bool) error {
	u := tr.h2.cs.CoreV1().RESTClient().Post().Namespace(namespace).Resource("pods").Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: "main", Command: []string{"cat"}, Stdin: true, Stdout: true, Stderr: true}, scheme.ParameterCodec).URL()
	var exe remotecommand.Executor
	var err error
	if websocket {
		exe, err = remotecommand.NewWebSocketExecutor(tr.h2.cfg, http.MethodGet, u.String())
	} else {
		exe, err = remotecommand.NewSPDYExecutor(tr.h2.cfg, http.MethodPost, u)
	}
	if err != nil {
		return err
	}
	sent := randomBytes(streamBytes)
	var stdout, stderr bytes.Buffer
	if err := exe.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: bytes.NewReader(sent), Stdout: &stdout, Stderr: &stderr}); err != nil {
		return err
	}
	if !bytes.Equal(stdout.Bytes(), sent) {
		return fmt.Errorf("%w: exec echoed %d bytes that differ from the %d sent (stderr %q)", errWrongData, stdout.Len(), len(sent), truncate(stderr.String(), 200))
	}
	return nil
}

// forwardOnce forwards a local port to the echo server behind pod's port,
// sends streamBytes through one connection, expects them back, and stops
// the forward.
func (tr *traffic) forwardOnce(ctx context.Context, pod string, websocket bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	u := tr.h2.cs.CoreV1().RESTClient().Post().Namespace(namespace).Resource("pods").Name(pod).SubResource("portforward").URL()
	var dialer httpstream.Dialer
	if websocket {
		d, err := portforward.NewSPDYOverWebsocketDialer(u, tr.h2.cfg)
		if err != nil {
			return err
		}
		dialer = d
	} else {
		rt, upgrader, err := spdy.RoundTripperFor(tr.h2.cfg)
		if err != nil {
			return err
		}
		dialer = spdy.NewDialer(upgrader, &http.Client{Transport: rt}, http.MethodPost, u)
	}
	ready := make(chan struct{})
	fw, err := portforward.NewOnAddressesWithContext(ctx, dialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(tr.r.echoPort)}, ready, io.Discard, io.Discard)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-done:
		if err == nil {
			err = errors.New("the port-forward ended before it was ready")
		}
		return err
	case <-ctx.Done():
		return errors.Join(ctx.Err(), <-done)
	}
	defer func() {
		cancel()
		<-done //nolint:errcheck // it ends because it was cancelled
	}()
	ports, err := fw.GetPorts()
	if err != nil {
		return err
	}
	return echoThrough(ctx, "127.0.0.1:"+strconv.Itoa(int(ports[0].Local)))
}

// echoThrough sends streamBytes through a new connection to addr and
// expects the same bytes back.
func echoThrough(ctx context.Context, addr string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	sent := randomBytes(streamBytes)
	written := make(chan error, 1)
	go func() {
		_, err := conn.Write(sent)
		written <- err
	}()
	back := make([]byte, len(sent))
	_, err = io.ReadFull(conn, back)
	if werr := <-written; werr != nil {
		return werr
	}
	if err != nil {
		return err
	}
	if !bytes.Equal(back, sent) {
		return fmt.Errorf("%w: the port-forward carried back bytes that differ from those sent", errWrongData)
	}
	return nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
