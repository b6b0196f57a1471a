package options

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestFailedAuthenticationValidate(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*FailedAuthentication)
		wantErr string
	}{
		{name: "defaults", edit: func(*FailedAuthentication) {}},
		{name: "budget off", edit: func(o *FailedAuthentication) { o.Burst, o.RefillInterval = 0, 0 }},
		{name: "negative burst", edit: func(o *FailedAuthentication) { o.Burst = -1 }, wantErr: "--authentication-failure-burst must not be negative"},
		{name: "no refill", edit: func(o *FailedAuthentication) { o.RefillInterval = 0 }, wantErr: "--authentication-failure-refill-interval must be positive"},
		{name: "negative cache TTL", edit: func(o *FailedAuthentication) { o.RefusedTokenCacheTTL = -time.Second }, wantErr: "--refused-token-cache-ttl must be between 0 and 1m"},
		{name: "cache TTL too long", edit: func(o *FailedAuthentication) { o.RefusedTokenCacheTTL = time.Hour }, wantErr: "--refused-token-cache-ttl must be between 0 and 1m"},
		{name: "no cache", edit: func(o *FailedAuthentication) { o.RefusedTokenCacheTTL = 0 }},
		{name: "negative reviews", edit: func(o *FailedAuthentication) { o.MaxOutboundReviews = -1 }, wantErr: "--max-outbound-authentication-reviews must not be negative"},
		{name: "no review limit", edit: func(o *FailedAuthentication) { o.MaxOutboundReviews = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewFailedAuthentication()
			tt.edit(&o)
			err := errors.Join(o.Validate()...)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate() = %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
}
