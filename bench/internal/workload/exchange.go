package workload

import (
	"context"
	"errors"
	"fmt"

	"github.com/kip-proxy/kip/bench/internal/load"
	"github.com/kip-proxy/kip/bench/internal/results"
	"github.com/kip-proxy/kip/bench/internal/rig"
)

// ExchangeConcurrencies are one `kip login`, and a burst of logins at once
// (CI jobs starting together). Eight stays under the exchange's failure
// budget per address, which is taken before a token check and given back
// after a good one.
var ExchangeConcurrencies = []int{1, 8}

// CredentialExchange trades tokens for client certificates at kip's
// TokenCredentialRequest endpoint: an OIDC ID token and a webhook token,
// each with a CSR as `kip login` sends, and an ID token without one, so
// that kip generates the key. Every kind is checked once (the certificate
// chains to the signer CA, names the token's user, fits the key) before it
// is measured. setup describes how kip ran.
func CredentialExchange(ctx context.Context, env Env) (res []results.Exchange, setup []string, err error) {
	ex, err := env.Rig.StartExchange(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer func() { err = errors.Join(err, ex.Stop()) }()
	kinds, err := exchangeKinds(ctx, ex)
	if err != nil {
		return nil, nil, err
	}
	for _, k := range kinds {
		if err := k.check(ctx); err != nil {
			return nil, nil, fmt.Errorf("exchanging %s: %w", k.target.Name, err)
		}
	}
	reviews, posts := ex.WebhookReviews(), webhookPosts(kinds)
	res = measureExchanges(ctx, env, kinds)
	reviews, posts = ex.WebhookReviews()-reviews, webhookPosts(kinds)-posts
	env.logf("the token webhook answered %d TokenReviews for %d exchanges of its token", reviews, posts)
	return res, append(ex.Setup, fmt.Sprintf("webhook: answered %d TokenReviews for the %d exchanges of its token after the first (warm-up included); kip's cache answered the rest", reviews, posts)), nil
}

// measureExchanges runs every kind at each concurrency, taking turns.
func measureExchanges(ctx context.Context, env Env, kinds []*exchangeKind) []results.Exchange {
	byTarget := make(map[*load.Target]*exchangeKind, len(kinds))
	byName := make(map[string]*exchangeKind, len(kinds))
	var targets []*load.Target
	for _, k := range kinds {
		byTarget[k.target], byName[k.target.Name] = k, k
		targets = append(targets, k.target)
	}
	send := func(ctx context.Context, t *load.Target) error {
		_, err := byTarget[t].post(ctx)
		return err
	}
	var res []results.Exchange
	for _, c := range ExchangeConcurrencies {
		n := requestsAt(env.Sizes.ExchangeRequests, c)
		env.logf("credential exchange, concurrency %d, %d exchanges per kind", c, n)
		loads := requestRun{targets: targets, concurrency: c, requests: n, rounds: env.Sizes.Rounds, send: send}.run(ctx)
		for _, l := range loads {
			res = append(res, byName[l.Target].result(l))
		}
	}
	return res
}

// webhookPosts counts the exchanges sent with the webhook's token.
func webhookPosts(kinds []*exchangeKind) int64 {
	var n int64
	for _, k := range kinds {
		if k.source == "webhook" {
			n += k.posts.Load()
		}
	}
	return n
}

// exchangeKinds signs in at Hydra for an ID token and prepares each kind
// of exchange with a connection of its own.
func exchangeKinds(ctx context.Context, ex *rig.Exchange) ([]*exchangeKind, error) {
	idToken, err := ex.IDToken(ctx)
	if err != nil {
		return nil, fmt.Errorf("signing in at Hydra: %w", err)
	}
	var kinds []*exchangeKind
	for _, spec := range []struct {
		name, source, token, user string
		csr                       bool
	}{
		{"oidc-csr", "oidc", idToken, rig.OIDCUser, true},
		{"webhook-csr", "webhook", rig.WebhookToken, rig.WebhookUser, true},
		{"oidc-generated-key", "oidc", idToken, rig.OIDCUser, false},
	} {
		t, err := ex.NewTarget(spec.name)
		if err != nil {
			return nil, err
		}
		k, err := newExchangeKind(t, spec.source, spec.token, spec.user, spec.csr, ex.SignerCAPEM)
		if err != nil {
			return nil, err
		}
		kinds = append(kinds, k)
	}
	return kinds, nil
}
