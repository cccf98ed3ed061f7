package handler

import (
	"context"
	"errors"
	"strings"
	"testing"
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
	s = newStack(t, stackOptions{redis: pinger{errors.New("dial tcp 127.0.0.1:6379: connection refused")}})
	w := s.do("GET", "/readyz", nil)
	if w.Code != 503 || !strings.Contains(w.Body.String(), "redis") {
		t.Fatalf("/readyz with Redis down = %d %q, want 503 naming redis", w.Code, w.Body.String())
	}
	s = newStack(t, stackOptions{redis: pinger{}})
	if w := s.do("GET", "/readyz", nil); w.Code != 200 {
		t.Fatalf("/readyz with Redis up = %d", w.Code)
	}
}

func TestMetrics(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.do("GET", "/auth", hdr("Authorization", "Bearer alice-token"))
	s.do("GET", "/auth", hdr("Authorization", "Bearer alice-token"))
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
	if strings.Contains(body, "alice-token") {
		t.Error("a credential appears in /metrics")
	}
}
