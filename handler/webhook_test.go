package handler

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgear/authgear-forwardauth/resolver"
)

// fakePurger records what it was asked to purge, and fails with err.
type fakePurger struct {
	mu      sync.Mutex
	err     error
	users   []string // purged or revoked
	revoked []string
	creds   []resolver.Credentials
}

func (p *fakePurger) RevokeUser(ctx context.Context, userID string) error {
	p.mu.Lock()
	p.revoked = append(p.revoked, userID)
	p.mu.Unlock()
	return p.PurgeUser(ctx, userID)
}

func (p *fakePurger) PurgeUser(_ context.Context, userID string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.users = append(p.users, userID)
	return p.err
}

func (p *fakePurger) PurgeCredentials(_ context.Context, c resolver.Credentials) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.creds = append(p.creds, c)
	return p.err
}

func (p *fakePurger) calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.users) + len(p.creds)
}

const webhookSecret = "whsec-0123456789abcdef"

func sign(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}

func event(typ, userID string) string {
	return `{"id":"0a1b","seq":42,"type":"` + typ + `","payload":{"user":{"id":"` + userID +
		`","is_disabled":true,"standard_attributes":{"email":"alice@example.com"}}},"context":{"timestamp":1764000000}}`
}

type webhookStack struct {
	handler http.Handler
	purger  *fakePurger
	reg     *prometheus.Registry
	purges  *prometheus.CounterVec
	log     *bytes.Buffer
}

func newWebhookStack(t testing.TB) *webhookStack {
	t.Helper()
	s := &webhookStack{purger: &fakePurger{}, reg: prometheus.NewRegistry(), log: &bytes.Buffer{}}
	s.purges = newPurgeCounter(s.reg)
	logger := slog.New(slog.NewTextHandler(s.log, nil))
	s.handler = handleWebhook(webhookSecret, s.purger, s.purges, logger, s.reg)
	return s
}

// post delivers body with the given signature headers (none when nil).
func (s *webhookStack) post(body string, sigs ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "/webhooks/authgear", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	for _, sig := range sigs {
		r.Header.Add("x-authgear-body-signature", sig)
	}
	w := httptest.NewRecorder()
	s.handler.ServeHTTP(w, r)
	return w
}

func (s *webhookStack) requests(status string) float64 {
	c, err := s.reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range c {
		if mf.GetName() != "forwardauth_webhook_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "status" && l.GetValue() == status {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return -1 // not registered
}

func TestWebhookSignature(t *testing.T) {
	body := event("user.disabled", "u1")
	good := sign(webhookSecret, body)
	tests := []struct {
		name   string
		body   string
		sigs   []string
		status int
	}{
		{name: "valid", body: body, sigs: []string{good}, status: 200},
		{name: "missing", body: body, status: 401},
		{name: "empty", body: body, sigs: []string{""}, status: 401},
		{name: "invalid hex", body: body, sigs: []string{strings.Repeat("zz", 32)}, status: 401},
		{name: "uppercase hex of the right MAC", body: body, sigs: []string{strings.ToUpper(good)}, status: 401},
		{name: "truncated", body: body, sigs: []string{good[:63]}, status: 401},
		{name: "with a prefix", body: body, sigs: []string{"sha256=" + good}, status: 401},
		{name: "body changed after signing", body: strings.Replace(body, "u1", "u2", 1), sigs: []string{good}, status: 401},
		{name: "trailing newline added after signing", body: body + "\n", sigs: []string{good}, status: 401},
		{name: "signed with another secret", body: body, sigs: []string{sign("other-secret", body)}, status: 401},
		{name: "SHA-256 without the key", body: body, sigs: []string{func() string { h := sha256.Sum256([]byte(body)); return hex.EncodeToString(h[:]) }()}, status: 401},
		{name: "two signature headers", body: body, sigs: []string{good, good}, status: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newWebhookStack(t)
			w := s.post(tt.body, tt.sigs...)
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d (body %s)", w.Code, tt.status, w.Body)
			}
			wantCalls := 0
			if tt.status == 200 {
				wantCalls = 1
			}
			if n := s.purger.calls(); n != wantCalls {
				t.Errorf("purges = %d, want %d", n, wantCalls)
			}
			if got := s.requests(w.Result().Status[:3]); got != 1 {
				t.Errorf("forwardauth_webhook_requests_total{status=%q} = %v, want 1", w.Result().Status[:3], got)
			}
		})
	}
}

func TestWebhookEventsPurgeTheirUser(t *testing.T) {
	purging := []string{
		"user.disabled", "user.reenabled", "user.deleted", "user.anonymized",
		"user.deletion_scheduled", "user.anonymization_scheduled",
		"user.profile.updated", "user.anonymous.promoted",
		"identity.email.added", "identity.email.removed", "identity.email.updated",
		"identity.phone.added", "identity.phone.removed", "identity.phone.updated",
		"identity.username.added", "identity.username.removed", "identity.username.updated",
		"identity.oauth.connected", "identity.biometric.disabled",
	}
	for _, typ := range purging {
		t.Run(typ, func(t *testing.T) {
			s := newWebhookStack(t)
			user := "user-of-" + typ
			body := event(typ, user)
			w := s.post(body, sign(webhookSecret, body))
			if w.Code != 200 || strings.TrimSpace(w.Body.String()) != `{"purged":true}` {
				t.Fatalf("got %d %s, want 200 {\"purged\":true}", w.Code, w.Body)
			}
			if !slices.Equal(s.purger.users, []string{user}) {
				t.Errorf("purged users = %q, want [%q]", s.purger.users, user)
			}
			// Only events that take access away block the user's JWTs.
			wantRevoked := typ == "user.disabled" || typ == "user.deleted" || typ == "user.anonymized"
			if got := len(s.purger.revoked) == 1; got != wantRevoked {
				t.Errorf("revoked = %q, want revoked: %v", s.purger.revoked, wantRevoked)
			}
			if got := testutil.ToFloat64(s.purges.WithLabelValues("webhook")); got != 1 {
				t.Errorf(`forwardauth_purges_total{cause="webhook"} = %v, want 1`, got)
			}
		})
	}

	ignored := []string{
		"user.authenticated", "user.signed_up", "user.created", "user.reauthenticated",
		"user.deletion_unscheduled", "authentication.identity.login_id.failed",
		"identityx.email.added", "USER.DISABLED", "user.disabled.later",
	}
	for _, typ := range ignored {
		t.Run(typ, func(t *testing.T) {
			s := newWebhookStack(t)
			body := event(typ, "u1")
			w := s.post(body, sign(webhookSecret, body))
			if w.Code != 200 || strings.TrimSpace(w.Body.String()) != `{"ignored":true}` {
				t.Fatalf("got %d %s, want 200 {\"ignored\":true}", w.Code, w.Body)
			}
			if n := s.purger.calls(); n != 0 {
				t.Errorf("an unrelated event purged %d times", n)
			}
			if got := testutil.ToFloat64(s.purges.WithLabelValues("webhook")); got != 0 {
				t.Errorf("purges counted for an ignored event: %v", got)
			}
		})
	}
}

func TestWebhookRefusals(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		status int
	}{
		{name: "not JSON", body: `user.disabled u1`, status: 400},
		{name: "truncated JSON", body: event("user.disabled", "u1")[:40], status: 400},
		{name: "two JSON values", body: event("user.disabled", "u1") + `{}`, status: 400},
		{name: "empty body", body: ``, status: 400},
		{name: "null", body: `null`, status: 400},
		{name: "an array", body: `[]`, status: 400},
		{name: "no type", body: `{"payload":{"user":{"id":"u1"}}}`, status: 400},
		{name: "type not a string", body: `{"type":7,"payload":{"user":{"id":"u1"}}}`, status: 400},
		{name: "purging event without payload", body: `{"type":"user.disabled"}`, status: 400},
		{name: "purging event without user", body: `{"type":"user.disabled","payload":{}}`, status: 400},
		{name: "purging event with an empty user id", body: `{"type":"user.deleted","payload":{"user":{"id":""}}}`, status: 400},
		{name: "purging event with a numeric user id", body: `{"type":"user.deleted","payload":{"user":{"id":7}}}`, status: 400},
		{name: "purging event with user null", body: `{"type":"identity.email.added","payload":{"user":null}}`, status: 400},
		{name: "ignored event with any payload", body: `{"type":"user.authenticated","payload":"whatever"}`, status: 200},
		{name: "oversized", body: `{"type":"user.disabled","payload":{"user":{"id":"u1"}},"pad":"` + strings.Repeat("x", maxWebhookBody) + `"}`, status: 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newWebhookStack(t)
			w := s.post(tt.body, sign(webhookSecret, tt.body))
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d (body %s)", w.Code, tt.status, w.Body)
			}
			if n := s.purger.calls(); n != 0 {
				t.Errorf("purged %d times", n)
			}
			if w.Code != 200 && !strings.Contains(w.Body.String(), `"error":`) {
				t.Errorf("refusal without a JSON error: %s", w.Body)
			}
			if got := s.requests(w.Result().Status[:3]); got != 1 {
				t.Errorf("requests{status=%q} = %v, want 1", w.Result().Status[:3], got)
			}
		})
	}
}

func TestWebhookPurgeFailureIs503(t *testing.T) {
	s := newWebhookStack(t)
	s.purger.err = errors.New("redis: connection refused")
	body := event("user.disabled", "u1")
	w := s.post(body, sign(webhookSecret, body))
	if w.Code != 503 {
		t.Fatalf("status = %d, want 503", w.Code)
	}
	if got := s.requests("503"); got != 1 {
		t.Errorf(`requests{status="503"} = %v, want 1`, got)
	}
	if got := testutil.ToFloat64(s.purges.WithLabelValues("webhook")); got != 0 {
		t.Errorf("a failed purge was counted: %v", got)
	}
	if !strings.Contains(s.log.String(), "connection refused") || !strings.Contains(s.log.String(), "level=ERROR") {
		t.Errorf("failure not logged as an error: %s", s.log)
	}
}

func TestWebhookLogsNeitherBodyNorSignature(t *testing.T) {
	s := newWebhookStack(t)
	body := event("user.profile.updated", "u1")
	sig := sign(webhookSecret, body)
	s.post(body, sig)
	s.post(body, "deadbeef")
	log := s.log.String()
	if n := strings.Count(log, "\n"); n != 2 {
		t.Errorf("log lines = %d, want one per delivery:\n%s", n, log)
	}
	for _, secret := range []string{sig, "deadbeef", "alice@example.com", webhookSecret} {
		if strings.Contains(log, secret) {
			t.Errorf("log contains %q:\n%s", secret, log)
		}
	}
	for _, want := range []string{"event=user.profile.updated", "user_id=u1", "outcome=purged", "outcome=\"wrong signature\""} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
}

func TestWebhookWithoutSecretPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("an empty secret was accepted: anyone could sign")
		}
	}()
	reg := prometheus.NewRegistry()
	handleWebhook("", &fakePurger{}, newPurgeCounter(reg), discard, reg)
}

// FuzzWebhook checks that no body or signature panics, purges without a
// valid signature, or gets an answer other than 200, 400, 401 or 413.
func FuzzWebhook(f *testing.F) {
	for _, body := range []string{
		event("user.disabled", "u1"), event("identity.email.added", "u2"), event("user.signed_up", "u3"),
		`{"type":"user.deleted","payload":{"user":{"id":""}}}`, `{"type":"user.deleted"}`, `{}`, `null`, ``, `{"type":`,
	} {
		f.Add([]byte(body), sign(webhookSecret, body), true)
		f.Add([]byte(body), sign(webhookSecret, body), false)
		f.Add([]byte(body), strings.ToUpper(sign(webhookSecret, body)), false)
		f.Add([]byte(body), "", false)
	}
	f.Fuzz(func(t *testing.T, body []byte, sig string, signIt bool) {
		// signIt lets the fuzzer reach the parser, which only signed bodies do.
		if signIt {
			sig = sign(webhookSecret, string(body))
		}
		s := newWebhookStack(t)
		r := httptest.NewRequest("POST", "/webhooks/authgear", bytes.NewReader(body))
		r.Header["X-Authgear-Body-Signature"] = []string{sig}
		w := httptest.NewRecorder()
		s.handler.ServeHTTP(w, r)

		switch w.Code {
		case 200, 400, 401, 413:
		default:
			t.Fatalf("status %d", w.Code)
		}
		valid := sig == sign(webhookSecret, string(body))
		if !valid && (w.Code != 401 && w.Code != 413 || s.purger.calls() != 0) {
			t.Fatalf("unsigned body: status %d, %d purges", w.Code, s.purger.calls())
		}
		if s.purger.calls() > 0 && w.Code != 200 {
			t.Fatalf("purged but answered %d", w.Code)
		}
	})
}
