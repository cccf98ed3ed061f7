package handler

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgear/authgear-forwardauth/cache"
	"github.com/authgear/authgear-forwardauth/internal/clocktest"
	"github.com/authgear/authgear-forwardauth/perclient"
	"github.com/authgear/authgear-forwardauth/resolver"
	"github.com/authgear/authgear-forwardauth/resolver/resolvertest"
)

// budgetStack is the service with main's resolver chain: the client's
// budget (rate 1/s, burst 3), then the Guard, then Authgear.
func budgetStack(t *testing.T, clock *clocktest.Clock) *stack {
	return newStack(t, stackOptions{
		trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		clock:   clock,
		resolverWrap: func(r cache.Resolver, reg *prometheus.Registry) cache.Resolver {
			g := resolver.NewGuard(r, resolver.GuardConfig{MaxConcurrent: 8, BreakAfter: 1, Cooldown: time.Hour}, reg)
			return perclient.New(g, perclient.Config{Rate: 1, Burst: 3, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Clock: clock},
				discard, g.Rejected("client_rate"))
		},
	})
}

func (s *stack) from(peer string, h http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/auth", nil)
	r.RemoteAddr = peer
	for k, v := range h {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	s.handler.ServeHTTP(w, r)
	return w
}

// TestClientBudget: only requests that would call Authgear spend a client's
// budget; over it, 429 with Retry-After and no call, while cached answers
// and other clients go on as before.
func TestClientBudget(t *testing.T) {
	clock := clocktest.New(time.Now())
	s := budgetStack(t, clock)
	const flooder = "203.0.113.7:5000"
	for range 50 { // cached answers cost nothing
		if w := s.from(flooder, bearerHeader(aliceToken)); w.Code != 200 {
			t.Fatalf("status %d", w.Code)
		}
	}
	for range 100 { // neither do credentials refused by shape
		if w := s.from(flooder, bearerHeader("garbage")); w.Code != 401 {
			t.Fatalf("status %d", w.Code)
		}
	}
	var wg sync.WaitGroup // nor coalesced waits
	for range 50 {
		wg.Add(1)
		go func() { defer wg.Done(); s.from(flooder, bearerHeader(bobToken)) }()
	}
	wg.Wait()
	if n := s.authgear.Calls(); n != 2 {
		t.Fatalf("resolver calls = %d, want 2", n)
	}
	if w := s.from(flooder, bearerHeader(nopeToken)); w.Code != 401 { // the third of the burst
		t.Fatalf("status %d", w.Code)
	}
	fresh := resolvertest.Token("fresh")
	w := s.from(flooder, bearerHeader(fresh))
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("over budget: %d Retry-After %q, want 429 and 1", w.Code, w.Header().Get("Retry-After"))
	}
	if w.Header().Get("X-Authgear-User-Id") != "" {
		t.Error("identity header on a 429")
	}
	if n := s.authgear.Calls(); n != 3 {
		t.Fatalf("resolver calls = %d, want 3: a client over budget reached Authgear", n)
	}
	if w := s.from(flooder, bearerHeader(nopeToken)); w.Code != 401 {
		t.Fatalf("a cached deny for a client over budget: %d, want 401", w.Code)
	}
	if w := s.from(flooder, bearerHeader(aliceToken)); w.Code != 200 {
		t.Fatalf("a cached allow for a client over budget: %d, want 200", w.Code)
	}
	// Through a trusted gateway, the client is the one it names.
	if w := s.from("127.0.0.1:9000", hdr("Authorization", "Bearer "+fresh, "X-Forwarded-For", "203.0.113.7")); w.Code != 429 {
		t.Fatalf("the same client through a gateway: %d, want 429", w.Code)
	}
	if w := s.from("127.0.0.1:9000", hdr("Authorization", "Bearer "+fresh, "X-Forwarded-For", "198.51.100.1")); w.Code != 401 {
		t.Fatalf("another client through the gateway: %d, want 401 from Authgear", w.Code)
	}
	clock.Advance(time.Second)
	if w := s.from(flooder, bearerHeader(resolvertest.Token("later"))); w.Code != 401 {
		t.Fatalf("a second later: %d, want an answer from Authgear", w.Code)
	}
	for outcome, want := range map[string]float64{"rate_limited": 2} {
		if got := metricValue(t, s.reg, "forwardauth_decisions_total", map[string]string{"outcome": outcome}); got != want {
			t.Errorf("decisions{outcome=%q} = %v, want %v", outcome, got, want)
		}
	}
	if got := metricValue(t, s.reg, "forwardauth_resolver_rejected_total", map[string]string{"reason": "client_rate"}); got != 2 {
		t.Errorf(`resolver_rejected_total{reason="client_rate"} = %v, want 2`, got)
	}
	if got := metricValue(t, s.reg, "forwardauth_resolver_circuit_open", nil); got != 0 {
		t.Error("429s opened the circuit")
	}
}
