package proxy

import (
	"context"
	"net/http"
)

type headersKey struct{}

// contextWithHeaders hands the identity headers from ServeHTTP, where errors
// can still be answered, to Rewrite, which cannot fail.
func contextWithHeaders(ctx context.Context, h http.Header) context.Context {
	return context.WithValue(ctx, headersKey{}, h)
}

func headersFrom(ctx context.Context) http.Header {
	h, _ := ctx.Value(headersKey{}).(http.Header)
	return h
}
