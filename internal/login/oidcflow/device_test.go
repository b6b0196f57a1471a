package oidcflow

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

func TestDeviceError(t *testing.T) {
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want string
	}{
		{"denied", context.Background(), &oauth2.RetrieveError{ErrorCode: "access_denied"}, "the sign-in with code ABCD-EFGH was denied at https://idp"},
		{"expired at the provider", context.Background(), &oauth2.RetrieveError{ErrorCode: "expired_token"}, "the code ABCD-EFGH expired before"},
		{"expired while polling", context.Background(), fmt.Errorf("polling: %w", context.DeadlineExceeded), "the code ABCD-EFGH expired before"},
		// The caller's own deadline is not the code's: say what happened.
		{"caller gave up", ended, context.DeadlineExceeded, "waiting for the device sign-in at https://idp: context deadline exceeded"},
		{"other OAuth error", context.Background(), &oauth2.RetrieveError{ErrorCode: "invalid_client"}, "waiting for the device sign-in at https://idp"},
		{"network", context.Background(), errors.New("connection refused"), "waiting for the device sign-in at https://idp: connection refused"},
	}
	c := New(Config{Issuer: "https://idp"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.deviceError(tt.ctx, tt.err, "ABCD-EFGH").Error(); !strings.Contains(got, tt.want) {
				t.Errorf("got %q, want it to contain %q", got, tt.want)
			}
		})
	}
}
