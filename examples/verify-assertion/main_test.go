package main

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgear/authgear-forwardauth/assertion"
	"github.com/authgear/authgear-forwardauth/resolver"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func issuer(t *testing.T, c assertion.Clock) (*assertion.Issuer, string) {
	t.Helper()
	set, err := assertion.GenerateSet(nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := assertion.ParseKeys(set)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := assertion.New(t.Context(), assertion.Config{Keys: keys, TTL: time.Minute, Clock: c}, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(iss.JWKS())
	t.Cleanup(srv.Close)
	return iss, srv.URL
}

// TestVerifier runs the README's example against the service's own JWKS
// handler and tokens.
func TestVerifier(t *testing.T) {
	iss, jwksURL := issuer(t, nil)
	v, err := NewVerifier(t.Context(), jwksURL, "authgear-forwardauth", "app.example.com")
	if err != nil {
		t.Fatal(err)
	}
	alice := resolver.Identity{UserID: "alice", Roles: []string{"admin", "editor"}, Verified: true}
	token := func(i *assertion.Issuer, aud string) string {
		val, err := i.Assertion(resolver.Allow(alice, time.Time{}), aud)
		if err != nil {
			t.Fatal(err)
		}
		return val[0]
	}
	other, _ := issuer(t, nil)
	past, _ := issuer(t, &clock{now: time.Now().Add(-2 * time.Minute)})
	h := v.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := UserFrom(r.Context())
		if u.ID != "alice" || len(u.Roles) != 2 || u.Roles[1] != "editor" || !u.Verified {
			t.Errorf("user %+v", u)
		}
	}))
	for _, tc := range []struct {
		name, header string
		status       int
	}{
		{"valid", token(iss, "app.example.com"), 200},
		{"none", "", 401},
		{"for another application", token(iss, "other.example.com"), 401},
		{"signed by another key", token(other, "app.example.com"), 401},
		{"expired", token(past, "app.example.com"), 401},
		{"garbage", "a.b.c", 401},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if tc.header != "" {
			r.Header.Set("X-Authgear-Jwt-Assertion", tc.header)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, w.Code, tc.status)
		}
	}
}
