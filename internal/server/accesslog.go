package server

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"time"

	"github.com/kip-proxy/kip/internal/gateway"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/endpoints/responsewriter"
	"k8s.io/klog/v2"
)

// accessRecord is what the access log learns of a request on its way
// through the chain: the outer filter cannot see the user, which
// authentication puts into a context only the inner filters see.
type accessRecord struct {
	user, impersonated string
}

type accessRecordKey struct{}

// withAccessLog writes one line per request: who (and as whom, with
// kubectl --as), verb, path, code and latency. It never logs headers, the
// query or bodies, which is where tokens, certificates and keys travel.
// It must sit inside WithRequestInfo.
func withAccessLog(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start, ok := request.ReceivedTimestampFrom(r.Context())
		if !ok {
			start = time.Now()
		}
		rec := &accessRecord{}
		cw := &codeWriter{ResponseWriter: w}
		returned := false
		defer func() {
			code := cw.code
			if code == 0 {
				code = http.StatusOK
				if !returned {
					code = http.StatusInternalServerError
				}
			}
			verb := r.Method
			if info, ok := request.RequestInfoFrom(r.Context()); ok {
				verb = info.Verb
			}
			kv := []any{"user", rec.user, "verb", verb, "path", r.URL.Path, "code", code, "latency", time.Since(start)}
			if rec.impersonated != "" {
				kv = append(kv, "impersonatedUser", rec.impersonated)
			}
			// In a gateway, the path is the cluster's, and the cluster
			// says which one.
			if cluster, ok := gateway.ClusterFrom(r.Context()); ok {
				kv = append(kv, "cluster", cluster)
			}
			klog.InfoS("Access", kv...)
		}()
		h.ServeHTTP(responsewriter.WrapForHTTP1Or2(cw), r.WithContext(context.WithValue(r.Context(), accessRecordKey{}, rec)))
		returned = true
	})
}

// withAccessLogUser notes the user of the request for the access log. Put
// inside authentication it notes the caller; put again inside
// impersonation, a different user there is the one impersonated.
func withAccessLogUser(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec, _ := r.Context().Value(accessRecordKey{}).(*accessRecord)
		if u, ok := request.UserFrom(r.Context()); ok && rec != nil {
			switch name := u.GetName(); {
			case rec.user == "":
				rec.user = name
			case name != rec.user:
				rec.impersonated = name
			}
		}
		h.ServeHTTP(w, r)
	})
}

// codeWriter remembers the status code of a response.
type codeWriter struct {
	http.ResponseWriter
	code int
}

var _ responsewriter.UserProvidedDecorator = &codeWriter{}

func (w *codeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *codeWriter) WriteHeader(code int) {
	// 1xx answers other than 101 precede the real one.
	if w.code == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *codeWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Hijack hands the connection over. kip's proxy does so only once the
// upstream answered 101 Switching Protocols, which httputil.ReverseProxy
// then writes on the raw connection, never through WriteHeader.
func (w *codeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.code == 0 {
		w.code = http.StatusSwitchingProtocols
	}
	return conn, rw, err
}
