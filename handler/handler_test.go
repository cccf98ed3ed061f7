package handler

import (
	"context"
	"errors"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgear/authgear-forwardauth/resolver"
)

type pinger struct{ err error }

func (p pinger) Ping(context.Context) error { return p.err }

func TestHealthAndReadiness(t *testing.T) {
	s := newStack(t, stackOptions{})
	if w := s.do("GET", "/healthz", nil); w.Code != 200 {
		t.Fatalf("/healthz = %d", w.Code)
	}
	if w := s.do("GET", "/readyz", nil); w.Code != 200 {
		t.Fatalf("/readyz without Redis = %d", w.Code)
	}
	s.wantReadyGauge(t, 1)
	s = newStack(t, stackOptions{redis: pinger{errors.New("dial tcp 127.0.0.1:6379: connection refused")}})
	w := s.do("GET", "/readyz", nil)
	if w.Code != 503 || !strings.Contains(w.Body.String(), "redis") {
		t.Fatalf("/readyz with Redis down = %d %q, want 503 naming redis", w.Code, w.Body.String())
	}
	s.wantReadyGauge(t, 0)
	s = newStack(t, stackOptions{redis: pinger{}})
	if w := s.do("GET", "/readyz", nil); w.Code != 200 {
		t.Fatalf("/readyz with Redis up = %d", w.Code)
	}
	s.wantReadyGauge(t, 1)
}

// wantReadyGauge checks that /metrics says what /readyz says.
func (s *stack) wantReadyGauge(t *testing.T, want int) {
	t.Helper()
	line := "\nforwardauth_ready " + strconv.Itoa(want) + "\n"
	if body := s.do("GET", "/metrics", nil).Body.String(); !strings.Contains(body, line) {
		t.Errorf("/metrics lacks %q", strings.TrimSpace(line))
	}
}

func TestMetrics(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.do("GET", "/auth", hdr("Authorization", "Bearer "+aliceToken))
	s.do("GET", "/auth", hdr("Authorization", "Bearer "+aliceToken))
	s.do("GET", "/auth", nil)
	body := s.do("GET", "/metrics", nil).Body.String()
	for _, want := range []string{
		`forwardauth_decisions_total{outcome="allow"} 2`,
		`forwardauth_decisions_total{outcome="no_credential"} 1`,
		`forwardauth_cache_lookups_total{cache="resolver",result="hit",tier="local"} 1`,
		`forwardauth_cache_lookups_total{cache="resolver",result="miss",tier="local"} 1`,
		`forwardauth_resolver_calls_total{result="allow"} 1`,
		`forwardauth_resolver_duration_seconds_count 1`,
		`forwardauth_coalesced_waits_total{cache="resolver"} 0`,
		`forwardauth_cache_shared_errors_total{cache="resolver"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, aliceToken) {
		t.Error("a credential appears in /metrics")
	}
}

// staleDecider answers every request with a stale allow, as the cache does
// under STALE_IF_ERROR while Authgear fails.
type staleDecider struct{}

func (staleDecider) Decide(context.Context, resolver.Request) (*resolver.Decision, error) {
	d := *resolver.Allow(resolver.Identity{UserID: "u1"}, time.Time{})
	d.Stale = true
	return &d, nil
}

func TestStaleAllowIsMarked(t *testing.T) {
	h := New(Config{}, Deps{Decider: staleDecider{}, Logger: discard, Registry: prometheus.NewRegistry()})
	r := httptest.NewRequest("GET", "/auth", nil)
	r.Header.Set("Authorization", "Bearer "+aliceToken)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 || w.Header().Get("X-Forwardauth-Stale") != "true" || w.Header().Get("X-Authgear-User-Id") != "u1" {
		t.Fatalf("got %d, stale %q, user %q; want 200, marked stale, u1", w.Code, w.Header().Get("X-Forwardauth-Stale"), w.Header().Get("X-Authgear-User-Id"))
	}
	s := newStack(t, stackOptions{})
	if w := s.do("GET", "/auth", hdr("Authorization", "Bearer "+aliceToken)); w.Header().Get("X-Forwardauth-Stale") != "" {
		t.Fatal("a fresh allow marked stale")
	}
}
