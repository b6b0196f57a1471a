package testnode

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"strconv"
)

// serveLogs answers a container log request: the whole log, or its last
// tailLines lines, and with follow=true whatever is written after, until
// the client goes away or the container ends. Other PodLogOptions are
// ignored.
func (n *Node) serveLogs(w http.ResponseWriter, r *http.Request) {
	c, ok := n.containerFor(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	follow := q.Get("follow") == "true"
	tail := int64(-1)
	if v := q.Get("tailLines"); v != "" {
		var err error
		if tail, err = strconv.ParseInt(v, 10, 64); err != nil || tail < 0 {
			http.Error(w, "tailLines must be a number of lines", http.StatusBadRequest)
			return
		}
	}
	f, err := os.Open(c.logs.path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer func() { _ = f.Close() }()
	if tail >= 0 {
		if _, err := f.Seek(tailOffset(f, tail), io.SeekStart); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		// An empty log must not hold the response headers back.
		flusher.Flush()
	}
	buf := make([]byte, 32<<10)
	for {
		// Watch before reading, so that a write between the read and the
		// wait is not missed.
		changed := c.logs.watch()
		n, err := f.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
			continue
		}
		if err != io.EOF || !follow {
			return
		}
		select {
		case <-changed:
		case <-c.done:
			follow = false // read what is left, then end
		case <-r.Context().Done():
			return
		}
	}
}

// tailOffset is where the last n lines of f begin. Logs here are small
// enough to read whole.
func tailOffset(f *os.File, n int64) int64 {
	data, err := io.ReadAll(f)
	if err != nil {
		return 0
	}
	if n == 0 {
		return int64(len(data))
	}
	end := len(data)
	if end > 0 && data[end-1] == '\n' {
		end-- // the final newline ends the last line, it does not start one
	}
	for ; n > 0; n-- {
		i := bytes.LastIndexByte(data[:end], '\n')
		if i < 0 {
			return 0 // fewer lines than asked for: all of them
		}
		end = i
	}
	return int64(end + 1)
}
