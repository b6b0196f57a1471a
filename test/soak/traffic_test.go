package soak

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

// mix is how much of each kind of traffic the soak sends. It is steady
// load a shared two-core machine carries beside the control plane, not a
// throughput test: the soak looks for what an hour of ordinary use leaves
// behind.
type mix struct {
	getWorkers    int
	getEvery      time.Duration
	listEvery     time.Duration
	patchEvery    time.Duration
	watches       int
	execEvery     time.Duration
	forwardEvery  time.Duration
	exchangeEvery time.Duration
	// tokenUses is how many exchanges share one ID token before the soak
	// signs in at Hydra again.
	tokenUses int
}

var defaultMix = mix{
	getWorkers: 4, getEvery: 50 * time.Millisecond,
	listEvery:  500 * time.Millisecond,
	patchEvery: time.Second,
	watches:    16,
	execEvery:  2 * time.Second, forwardEvery: 2 * time.Second,
	exchangeEvery: 3 * time.Second, tokenUses: 10,
}

// opTimeout bounds one ordinary request; streams get streamTimeout.
const (
	opTimeout     = 30 * time.Second
	streamTimeout = time.Minute
)

// traffic sends the mix through kip until its context ends.
type traffic struct {
	r     *rig
	tally *tally
	mix   mix
	// h2 and h1 are the certificate user's clients over HTTP/2 and
	// HTTP/1.1; closeAll closes their connections, and every other
	// client's, so kip can give back what it held for them.
	h2, h1  *client
	clients []*client
}

func newTraffic(r *rig, t *tally, m mix) (*traffic, error) {
	tr := &traffic{r: r, tally: t, mix: m}
	var err error
	if tr.h2, err = r.newClient(certUser, false); err != nil {
		return nil, err
	}
	if tr.h1, err = r.newClient(certUser, true); err != nil {
		return nil, err
	}
	tr.clients = []*client{tr.h2, tr.h1}
	return tr, nil
}

func (tr *traffic) closeAll() {
	for _, c := range tr.clients {
		c.close()
	}
}

// run sends traffic until ctx ends, then waits for every worker.
func (tr *traffic) run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range tr.mix.getWorkers {
		wg.Go(func() { tr.every(ctx, tr.mix.getEvery, func() { tr.get(ctx, tr.pick(i)) }) })
	}
	wg.Go(func() { tr.every(ctx, tr.mix.listEvery, func() { tr.list(ctx, tr.h2) }) })
	wg.Go(func() { tr.every(ctx, tr.mix.patchEvery, func() { tr.patch(ctx) }) })
	for i := range tr.mix.watches {
		wg.Go(func() { tr.watchLoop(ctx, tr.pick(i)) })
	}
	wg.Go(func() { tr.streams(ctx, tr.mix.execEvery, kindExec, tr.execOnce) })
	wg.Go(func() { tr.streams(ctx, tr.mix.forwardEvery, kindPortForward, tr.forwardOnce) })
	wg.Go(func() { tr.exchangeLoop(ctx) })
	wg.Wait()
}

// pick alternates between HTTP/2 and HTTP/1.1.
func (tr *traffic) pick(i int) *client {
	if i%2 == 0 {
		return tr.h2
	}
	return tr.h1
}

// every runs op, then waits d, until ctx ends.
func (tr *traffic) every(ctx context.Context, d time.Duration, op func()) {
	for ctx.Err() == nil {
		op()
		pause(ctx, d)
	}
}

// record counts the outcome of a request of kind k, unless the soak ended
// under it: a request cut short by the end is nobody's failure.
func (tr *traffic) record(ctx context.Context, k kind, err error) {
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		tr.tally.fail(k, err)
		return
	}
	tr.tally.ok(k)
}

func (tr *traffic) get(ctx context.Context, c *client) {
	opCtx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	_, err := c.cs.CoreV1().ConfigMaps(namespace).Get(opCtx, configMapName(rand.IntN(configMaps)), metav1.GetOptions{})
	tr.record(ctx, kindGet, err)
}

func (tr *traffic) list(ctx context.Context, c *client) string {
	opCtx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	l, err := c.cs.CoreV1().ConfigMaps(namespace).List(opCtx, metav1.ListOptions{})
	tr.record(ctx, kindList, err)
	if err != nil {
		return ""
	}
	if n := len(l.Items); n != configMaps+1 {
		tr.record(ctx, kindList, fmt.Errorf("%w: listed %d ConfigMaps, want %d", errWrongData, n, configMaps+1))
	}
	return l.ResourceVersion
}

// patch changes the pulse ConfigMap, which every watch sees.
func (tr *traffic) patch(ctx context.Context) {
	opCtx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	body := fmt.Sprintf(`{"data":{"at":%q}}`, time.Now().Format(time.RFC3339Nano))
	_, err := tr.h2.cs.CoreV1().ConfigMaps(namespace).Patch(opCtx, pulse, types.MergePatchType, []byte(body), metav1.PatchOptions{})
	tr.record(ctx, kindPatch, err)
}

// watchLoop keeps a watch open as client-go's reflectors do: each with a
// random timeout of one to five minutes, resumed from the last resource
// version it saw, listed again when that version has expired.
func (tr *traffic) watchLoop(ctx context.Context, c *client) {
	rv := ""
	for ctx.Err() == nil {
		if rv == "" {
			if rv = tr.list(ctx, c); rv == "" {
				pause(ctx, time.Second)
				continue
			}
		}
		timeout := int64(60 + rand.IntN(240))
		w, err := c.cs.CoreV1().ConfigMaps(namespace).Watch(ctx, metav1.ListOptions{
			ResourceVersion: rv, TimeoutSeconds: &timeout, AllowWatchBookmarks: true,
		})
		switch {
		case isExpired(err):
			tr.tally.relist()
			rv = ""
			continue
		case err != nil:
			tr.record(ctx, kindWatch, err)
			pause(ctx, time.Second)
			continue
		}
		tr.record(ctx, kindWatch, nil)
		rv = tr.consume(ctx, w, rv, time.Duration(timeout)*time.Second)
	}
}

// consume reads w until it ends and returns the resource version to
// resume from: empty when it has expired.
func (tr *traffic) consume(ctx context.Context, w watch.Interface, rv string, timeout time.Duration) string {
	defer w.Stop()
	opened := time.Now()
	for {
		select {
		case <-ctx.Done():
			return rv
		case ev, ok := <-w.ResultChan():
			if !ok {
				// kube-apiserver ends a watch at its timeout; earlier means
				// something on the way cut it.
				if time.Since(opened) < timeout-2*time.Second {
					tr.record(ctx, kindWatch, errWatchClosedEarly)
					pause(ctx, time.Second)
				}
				return rv
			}
			if ev.Type == watch.Error {
				err := apierrors.FromObject(ev.Object)
				if isExpired(err) {
					tr.tally.relist()
					return ""
				}
				tr.record(ctx, kindWatch, err)
				return rv
			}
			if m, err := meta.Accessor(ev.Object); err == nil && m.GetResourceVersion() != "" {
				rv = m.GetResourceVersion()
			}
			if ev.Type != watch.Bookmark {
				tr.tally.watchEvent()
			}
		}
	}
}

func isExpired(err error) bool {
	return err != nil && (apierrors.IsResourceExpired(err) || apierrors.IsGone(err))
}

func isForbidden(err error) bool { return apierrors.IsForbidden(err) }

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
