package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
)

func TestUpstreamError(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantCode int32
	}{
		{"deadline", context.DeadlineExceeded, http.StatusGatewayTimeout},
		{"refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, http.StatusServiceUnavailable},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), http.StatusServiceUnavailable},
		{"header list over the upstream's limit (net/http's HTTP/2)", errors.New("request header list larger than peer's advertised limit"), http.StatusRequestHeaderFieldsTooLarge},
		{"header list over the upstream's limit (x/net/http2)", fmt.Errorf("round trip: %w", errors.New("http2: request header list larger than peer's advertised limit")), http.StatusRequestHeaderFieldsTooLarge},
		{"response header list too large is the upstream's fault", errors.New("http2: response header list larger than advertised limit"), http.StatusBadGateway},
		{"anything else", errors.New("unexpected EOF"), http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			se := upstreamError(tt.err, "https://10.0.0.1:6443")
			if se.ErrStatus.Code != tt.wantCode {
				t.Fatalf("code %d, want %d (%s)", se.ErrStatus.Code, tt.wantCode, se.ErrStatus.Message)
			}
			if !strings.Contains(se.ErrStatus.Message, "https://10.0.0.1:6443") {
				t.Errorf("message %q does not name the upstream", se.ErrStatus.Message)
			}
		})
	}
}
