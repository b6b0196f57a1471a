package proxy

import "sync"

// Copy buffer sizes. A short response is copied through a large pooled
// buffer, so it costs neither an allocation nor many writes. A watch holds
// its buffer for as long as it is open, often hours, while each event is a
// few hundred bytes: a small buffer there keeps thousands of open watches
// cheap.
const (
	shortBufferSize = 32 << 10
	watchBufferSize = 4 << 10
)

// bufferPool implements httputil.BufferPool over a sync.Pool of one size.
type bufferPool struct{ pool sync.Pool }

func newBufferPool(size int) *bufferPool {
	return &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, size); return &b }}}
}

func (p *bufferPool) Get() []byte { return *p.pool.Get().(*[]byte) }

func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }
