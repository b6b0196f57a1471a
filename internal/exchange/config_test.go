package exchange

import (
	"strings"
	"testing"
	"time"
)

func TestNewValidatesConfig(t *testing.T) {
	tokens, ca := &fakeTokens{}, newTestCA(t)
	cases := []struct {
		name    string
		edit    func(*Config)
		wantErr string
	}{
		{name: "defaults", edit: func(*Config) {}},
		{name: "a day", edit: func(c *Config) { c.TTL = MaxTTL }},
		{name: "no authenticator", edit: func(c *Config) { c.Tokens = nil }, wantErr: "a token authenticator is required"},
		{name: "no issuer", edit: func(c *Config) { c.Issuer = nil }, wantErr: "a certificate issuer is required"},
		{name: "negative TTL", edit: func(c *Config) { c.TTL = -time.Minute }, wantErr: "TTL -1m0s must be positive"},
		{name: "TTL over a day", edit: func(c *Config) { c.TTL = MaxTTL + time.Second }, wantErr: "at most 24h0m0s"},
		{name: "negative token timeout", edit: func(c *Config) { c.TokenTimeout = -1 }, wantErr: "token timeout"},
		{name: "negative burst", edit: func(c *Config) { c.FailureBurst = -1 }, wantErr: "failure burst -1"},
		{name: "negative interval", edit: func(c *Config) { c.FailureInterval = -time.Second }, wantErr: "failure interval"},
		{name: "negative table size", edit: func(c *Config) { c.MaxClients = -1 }, wantErr: "rate-limited clients -1"},
		{name: "all wrong at once", edit: func(c *Config) { *c = Config{TTL: -1} }, wantErr: "a certificate issuer is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Tokens: tokens, Issuer: ca}
			tc.edit(&c)
			h, err := New(c)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tc.wantErr == "" && h == nil:
				t.Fatal("New returned no handler")
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("New: %v, want an error saying %q", err, tc.wantErr)
			case tc.wantErr != "" && !strings.HasPrefix(err.Error(), "the credential exchange is misconfigured: "):
				t.Errorf("error %q does not say what is misconfigured", err)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{}
	c.setDefaults()
	if c.TTL != 5*time.Minute || c.TokenTimeout != DefaultTokenTimeout || c.FailureBurst != DefaultFailureBurst ||
		c.FailureInterval != DefaultFailureInterval || c.MaxClients != DefaultMaxClients || c.Clock == nil {
		t.Errorf("defaults %+v", c)
	}
}
