package identity

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	kipexchange "github.com/kip-proxy/kip/internal/exchange"
	"github.com/kip-proxy/kip/internal/rig/harness"
)

// TestExchangeBudgetOverIPv6 runs a kip listening on every address, IPv6
// included, and spends the exchange's failure budget from ::1 over IPv6.
//
// Verdict: the budget is kept per client address over IPv6 as over IPv4:
// after the burst, ::1 gets 429 with Retry-After, an X-Forwarded-For
// naming another IPv6 address does not change that, while 127.0.0.1 and,
// when the machine has one, a global or unique-local IPv6 address of
// another /64 keep budgets of their own (a failed token is answered 201
// "authentication failed", a good one gets a certificate). That two
// addresses of one /64 share a budget is shown by internal/exchange's unit
// tests only: the machine has a single address per /64, and the test does
// not change its network configuration. kube-apiserver has no exchange.
func TestExchangeBudgetOverIPv6(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("this machine has no IPv6 loopback: %v", err)
	}
	_ = ln.Close()
	ns := createNamespace(t)
	applyDeployedRole(t, ns, signerSecret)
	r, err := startReplica(t, ns, 0, "--authentication-token-webhook-config-file="+env.webhook.kubeconfig, "--bind-address=::")
	if err != nil {
		t.Fatal(err)
	}
	port := r.Addr[strings.LastIndexByte(r.Addr, ':')+1:]
	loop6 := at(r.config, "[::1]:"+port)
	for i := 0; i < kipexchange.DefaultFailureBurst; i++ {
		if code, _ := failedExchange(t, loop6, nil); code != http.StatusCreated {
			t.Fatalf("failed exchange %d of the burst from ::1: %d", i+1, code)
		}
	}
	limited := false
	for i := 0; i < 3 && !limited; i++ { // a unit or two may have come back meanwhile
		code, _ := failedExchange(t, loop6, http.Header{"X-Forwarded-For": {"2001:db8:1::7"}})
		limited = code == http.StatusTooManyRequests
	}
	if !limited {
		t.Fatal("::1 still has budget after the burst and more")
	}
	others := map[string]*rest.Config{"127.0.0.1": r.config}
	if a, ok := otherIPv6(); ok {
		others[a.String()] = at(r.config, net.JoinHostPort(a.String(), port))
	} else {
		t.Log("no global or unique-local IPv6 address on this machine: only 127.0.0.1 is compared with ::1")
	}
	for name, cfg := range others {
		t.Run("from "+name, func(t *testing.T) {
			if code, _ := failedExchange(t, cfg, nil); code != http.StatusCreated {
				t.Fatalf("a failed exchange from %s while ::1's budget is spent: %d, want 201", name, code)
			}
			mustExchangeAt(t, cfg, webhookToken, nil)
			// kip's log names the address it keyed: the request did come
			// from there, not through another family.
			host := name
			if strings.Contains(name, ":") {
				host = "[" + name + "]"
			}
			harness.Eventually(t, 10*time.Second, func() error {
				if data, err := os.ReadFile(r.LogPath); err != nil || !strings.Contains(string(data), `remoteAddr="`+host+`:`) {
					return fmt.Errorf("kip's log does not show a certificate issued to %s", host)
				}
				return nil
			})
		})
	}
}

// at is kip's config reaching it at addr, still verifying its serving
// certificate, which names localhost.
func at(kip *rest.Config, addr string) *rest.Config {
	c := rest.CopyConfig(kip)
	c.Host = "https://" + addr
	c.ServerName = "localhost"
	return c
}

// otherIPv6 is an IPv6 address of this machine that can reach itself and
// is in another /64 than ::1: global or unique-local, not link-local.
func otherIPv6() (netip.Addr, bool) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return netip.Addr{}, false
	}
	for _, a := range addrs {
		p, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		ip := p.Addr()
		if ip.Is6() && !ip.Is4In6() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() && (ip.IsGlobalUnicast() || ip.IsPrivate()) {
			return ip, true
		}
	}
	return netip.Addr{}, false
}
