package handler

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

// httptest requests come from 192.0.2.1: trusted here unless a test says not.
var testProxies = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}

func TestPolicies(t *testing.T) {
	tests := []struct {
		name   string
		query  string
		header http.Header
		status int
	}{
		{"anonymous user refused by default", "", hdr("Authorization", "Bearer "+anonToken), 403},
		{"anonymous user allowed with allow_anonymous", "allow_anonymous", hdr("Authorization", "Bearer "+anonToken), 200},
		{"allow_anonymous=false still refuses", "allow_anonymous=false", hdr("Authorization", "Bearer "+anonToken), 403},
		{"verified user passes require_verified", "require_verified=true", hdr("Authorization", "Bearer "+aliceToken), 200},
		{"unverified user fails require_verified", "require_verified", hdr("Authorization", "Bearer "+bobToken), 403},
		{"any of the roles", "roles=viewer,editor", hdr("Authorization", "Bearer "+aliceToken), 200},
		{"none of the roles", "roles=viewer,owner", hdr("Authorization", "Bearer "+aliceToken), 403},
		{"user without roles", "roles=admin", hdr("Authorization", "Bearer "+bobToken), 403},
		{"optional without credential", "optional", hdr(), 200},
		{"optional with a bad credential", "optional", hdr("Authorization", "Bearer "+nopeToken), 200},
		{"optional with a malformed credential", "optional", hdr("Authorization", "Bearer"), 200},
		{"optional with a valid credential", "optional", hdr("Authorization", "Bearer "+aliceToken), 200},
		{"optional still applies the policy to a known user", "optional&roles=owner", hdr("Authorization", "Bearer "+aliceToken), 403},
		{"no credential without optional", "roles=admin", hdr(), 401},
		{"unknown parameter fails closed", "role=admin", hdr("Authorization", "Bearer "+aliceToken), 500},
		{"typo never opens an optional route", "optionl", hdr(), 500},
		{"malformed flag", "require_verified=yes", hdr("Authorization", "Bearer "+aliceToken), 500},
		{"empty role", "roles=admin,,x", hdr("Authorization", "Bearer "+aliceToken), 500},
		{"repeated parameter", "roles=a&roles=b", hdr("Authorization", "Bearer "+aliceToken), 500},
		{"malformed escape", "roles=%zz", hdr("Authorization", "Bearer "+aliceToken), 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t, stackOptions{trusted: testProxies})
			w := s.do("GET", "/auth?"+tt.query, tt.header)
			if w.Code != tt.status {
				t.Fatalf("status = %d (%s), want %d", w.Code, strings.TrimSpace(w.Body.String()), tt.status)
			}
			switch tt.status {
			case 500:
				if !strings.Contains(w.Body.String(), "policy") {
					t.Errorf("500 body %q does not name the policy problem", w.Body.String())
				}
			case 403:
				if w.Header().Get("X-Authgear-User-Id") != "" {
					t.Error("identity header on a 403")
				}
			}
		})
	}
}

func TestOptionalWithoutCredentialSetsEveryIdentityHeaderEmpty(t *testing.T) {
	s := newStack(t, stackOptions{})
	w := s.do("GET", "/auth?optional", nil)
	if w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	for _, name := range []string{"X-Authgear-User-Id", "X-Authgear-User-Roles", "X-Authgear-User-Anonymous", "X-Authgear-Session-Amr"} {
		if v, ok := w.Header()[name]; !ok || v[0] != "" {
			t.Errorf("%s = %q, want present and empty", name, v)
		}
	}
	if v := w.Header().Get("X-Authgear-Session-Valid"); v != "false" {
		t.Errorf("X-Authgear-Session-Valid = %q, want false", v)
	}
}

// Caddy appends the original query to the auth URI; the client's query must
// neither break the route nor loosen it.
func TestAppendedOriginalQuery(t *testing.T) {
	tests := []struct {
		name   string
		target string
		fwdURI string
		header http.Header
		status int
	}{
		{"no policy, original query appended", "/auth?page=2&sort=asc", "/list?page=2&sort=asc", hdr("Authorization", "Bearer "+aliceToken), 200},
		{"policy then original query", "/auth?roles=admin&page=2", "/list?page=2", hdr("Authorization", "Bearer "+aliceToken), 200},
		{"policy still applied", "/auth?roles=owner&page=2", "/list?page=2", hdr("Authorization", "Bearer "+aliceToken), 403},
		{"client sends ?optional to a protected route", "/auth?optional", "/admin?optional", hdr(), 401},
		{"client appends optional after a policy", "/auth?roles=admin&optional", "/admin?optional", hdr(), 401},
		{"client query cannot drop require_verified", "/auth?require_verified", "/x?require_verified", hdr("Authorization", "Bearer "+bobToken), 403},
		{"untrusted peer's X-Forwarded-Uri is ignored", "/auth?page=2", "/list?page=2", hdr("Authorization", "Bearer "+aliceToken), 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proxies := testProxies
			if strings.HasPrefix(tt.name, "untrusted") {
				proxies = nil
			}
			s := newStack(t, stackOptions{trusted: proxies})
			h := tt.header.Clone()
			h.Set("X-Forwarded-Uri", tt.fwdURI)
			h.Set("X-Forwarded-Method", "GET")
			if w := s.do("GET", tt.target, h); w.Code != tt.status {
				t.Fatalf("status = %d (%s), want %d", w.Code, strings.TrimSpace(w.Body.String()), tt.status)
			}
		})
	}
}

func TestPreflight(t *testing.T) {
	preflight := func(extra ...string) http.Header {
		return hdr(append([]string{"Origin", "https://app.example", "Access-Control-Request-Method", "POST"}, extra...)...)
	}
	tests := []struct {
		name      string
		allow     bool
		proxies   []netip.Prefix
		header    http.Header
		wantAllow bool
	}{
		{"nginx preflight", true, testProxies, preflight("X-Original-Method", "OPTIONS"), true},
		{"traefik preflight", true, testProxies, preflight("X-Forwarded-Method", "OPTIONS"), true},
		{"disabled", false, testProxies, preflight("X-Forwarded-Method", "OPTIONS"), false},
		{"untrusted peer", true, nil, preflight("X-Forwarded-Method", "OPTIONS"), false},
		{"OPTIONS that is not a preflight", true, testProxies, hdr("X-Forwarded-Method", "OPTIONS"), false},
		{"preflight headers on a GET", true, testProxies, preflight("X-Forwarded-Method", "GET"), false},
		{"client-sent X-Original-Method through Traefik", true, testProxies, preflight("X-Forwarded-Method", "GET", "X-Original-Method", "OPTIONS"), false},
		{"client-sent X-Forwarded-Method through nginx", true, testProxies, preflight("X-Original-Method", "GET", "X-Forwarded-Method", "OPTIONS"), false},
		// Look-alikes that may run application code: they need a credential.
		{"no Origin", true, testProxies, hdr("X-Forwarded-Method", "OPTIONS", "Access-Control-Request-Method", "POST"), false},
		{"with a body (nginx reports its length)", true, testProxies, preflight("X-Original-Method", "OPTIONS", "X-Original-Content-Length", "12"), false},
		{"empty body (nginx)", true, testProxies, preflight("X-Original-Method", "OPTIONS", "X-Original-Content-Length", "0"), true},
		{"chunked body (nginx)", true, testProxies, preflight("X-Original-Method", "OPTIONS", "X-Original-Transfer-Encoding", "chunked"), false},
		{"with a Content-Type", true, testProxies, preflight("X-Forwarded-Method", "OPTIONS", "Content-Type", "application/json"), false},
		{"X-HTTP-Method-Override", true, testProxies, preflight("X-Forwarded-Method", "OPTIONS", "X-HTTP-Method-Override", "POST"), false},
		{"X-HTTP-Method", true, testProxies, preflight("X-Forwarded-Method", "OPTIONS", "X-HTTP-Method", "DELETE"), false},
		{"X-Method-Override", true, testProxies, preflight("X-Forwarded-Method", "OPTIONS", "X-Method-Override", "PUT"), false},
		{"X_HTTP_Method_Override (CGI spelling)", true, testProxies, preflight("X-Forwarded-Method", "OPTIONS", "X_HTTP_Method_Override", "POST"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t, stackOptions{trusted: tt.proxies, preflight: tt.allow})
			w := s.do("GET", "/auth", tt.header)
			if w.Code == 500 || w.Code == 400 {
				t.Fatalf("status %d (%s)", w.Code, w.Body.String())
			}
			if got := w.Code == 200; got != tt.wantAllow {
				t.Fatalf("status %d, want allowed=%v", w.Code, tt.wantAllow)
			}
			if tt.wantAllow && w.Header().Get("X-Authgear-User-Id") != "" {
				t.Error("a preflight carried an identity")
			}
			if s.authgear.Calls() != 0 {
				t.Error("a preflight asked Authgear")
			}
		})
		// The same at a location for preflights alone, with a valid
		// credential: a look-alike is refused all the same, unasked.
		t.Run(tt.name+"/preflight_only", func(t *testing.T) {
			s := newStack(t, stackOptions{trusted: tt.proxies, preflight: tt.allow})
			h := tt.header.Clone()
			h.Set("Authorization", "Bearer "+aliceToken)
			w := s.do("GET", "/auth?preflight_only", h)
			switch {
			case tt.wantAllow && w.Code != 200:
				t.Fatalf("status %d, want 200", w.Code)
			case !tt.wantAllow && w.Code != 403:
				t.Fatalf("status %d, want 403", w.Code)
			}
			if w.Header().Get("X-Authgear-User-Id") != "" {
				t.Error("an identity was given")
			}
			if s.authgear.Calls() != 0 {
				t.Error("Authgear was asked")
			}
		})
	}
}

func TestPreflightOnlyTakesNoOtherParameter(t *testing.T) {
	for _, q := range []string{"preflight_only&roles=admin", "optional&preflight_only", "preflight_only=maybe", "preflight_only&preflight_only"} {
		if _, err := parsePolicy(q); err == nil {
			t.Errorf("%q accepted", q)
		}
	}
	for _, q := range []string{"preflight_only", "preflight_only=true", "preflight_only=1"} {
		if p, err := parsePolicy(q); err != nil || !p.preflightOnly {
			t.Errorf("%q: %+v, %v", q, p, err)
		}
	}
	// Caddy appends the client's query: a reading that is for preflights
	// alone makes the location one.
	var ps policies
	rp, err := ps.routePolicies("preflight_only&roles=admin", "roles=admin")
	if err != nil || !rp.preflightOnly() {
		t.Errorf("%+v, %v", rp, err)
	}
}

func TestLoginRedirect(t *testing.T) {
	loginURL, _ := url.Parse("https://auth.example/login?ui=1")
	login := LoginConfig{URL: loginURL, ReturnParam: "return_to", ReturnHosts: []string{"app.example", "*.apps.example"}}
	browser := func(extra ...string) http.Header {
		return hdr(append([]string{"Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"}, extra...)...)
	}
	traefik := func(host, uri string) []string {
		return []string{"X-Forwarded-Method", "GET", "X-Forwarded-Proto", "https", "X-Forwarded-Host", host, "X-Forwarded-Uri", uri}
	}
	tests := []struct {
		name     string
		header   http.Header
		proxies  []netip.Prefix
		status   int
		returnTo string // "" when no Location is expected
	}{
		{"traefik browser: 302", browser(traefik("app.example", "/docs?page=2")...), testProxies, 302, "https://app.example/docs?page=2"},
		{"nginx browser: 401 with Location", browser("X-Original-Method", "GET", "X-Original-Url", "https://app.example/a/b?c=d"), testProxies, 401, "https://app.example/a/b?c=d"},
		{"nginx without X-Original-URL", browser("X-Original-Method", "GET", "X-Original-Uri", "/a", "Host", "app.example"), testProxies, 401, "https://app.example/a"},
		{"subdomain allowed by wildcard", browser(traefik("x.apps.example", "/")...), testProxies, 302, "https://x.apps.example/"},
		{"host not allowed: plain 401", browser(traefik("evil.example", "/")...), testProxies, 401, ""},
		{"wildcard does not match the bare domain's lookalike", browser(traefik("evilapps.example", "/")...), testProxies, 401, ""},
		{"API client: 401", hdr(append([]string{"Accept", "application/json"}, traefik("app.example", "/api")...)...), testProxies, 401, ""},
		{"XHR: 401", browser(append([]string{"X-Requested-With", "XMLHttpRequest"}, traefik("app.example", "/")...)...), testProxies, 401, ""},
		{"fetch() with Sec-Fetch-Mode cors: 401", browser(append([]string{"Sec-Fetch-Mode", "cors"}, traefik("app.example", "/")...)...), testProxies, 401, ""},
		{"POST: 401", browser("X-Forwarded-Method", "POST", "X-Forwarded-Host", "app.example", "X-Forwarded-Uri", "/form"), testProxies, 401, ""},
		{"untrusted peer: 401", browser(traefik("app.example", "/")...), nil, 401, ""},
		{"client-sent X-Original-URL through Traefik: 401", browser(append([]string{"X-Original-Url", "https://evil.example/"}, traefik("app.example", "/")...)...), testProxies, 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t, stackOptions{trusted: tt.proxies, login: login})
			w := s.do("GET", "/auth", tt.header)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d", w.Code, tt.status)
			}
			loc := w.Header().Get("Location")
			if tt.returnTo == "" {
				if loc != "" {
					t.Fatalf("Location = %q, want none", loc)
				}
				return
			}
			u, err := url.Parse(loc)
			if err != nil || u.Host != "auth.example" || u.Path != "/login" || u.Query().Get("ui") != "1" {
				t.Fatalf("Location = %q, want the login URL", loc)
			}
			if got := u.Query().Get("return_to"); got != tt.returnTo {
				t.Fatalf("return_to = %q, want %q", got, tt.returnTo)
			}
		})
	}
	t.Run("a valid session is not redirected", func(t *testing.T) {
		s := newStack(t, stackOptions{trusted: testProxies, login: login})
		h := browser(traefik("app.example", "/")...)
		h.Set("Cookie", "session="+aliceIDP)
		if w := s.do("GET", "/auth", h); w.Code != 200 {
			t.Fatalf("status %d", w.Code)
		}
	})
	t.Run("an invalid session is redirected", func(t *testing.T) {
		s := newStack(t, stackOptions{trusted: testProxies, login: login})
		h := browser(traefik("app.example", "/")...)
		h.Set("Cookie", "session="+nopeSession)
		if w := s.do("GET", "/auth", h); w.Code != 302 {
			t.Fatalf("status %d", w.Code)
		}
	})
}

// A body forwarded with the auth request (Traefik's forwardBody) shows that
// the original OPTIONS was no preflight.
func TestPreflightWithForwardedBody(t *testing.T) {
	s := newStack(t, stackOptions{trusted: testProxies, preflight: true})
	r := httptest.NewRequest("GET", "/auth", strings.NewReader("rm -rf"))
	r.Header = hdr("X-Forwarded-Method", "OPTIONS", "Origin", "https://app.example", "Access-Control-Request-Method", "POST")
	w := httptest.NewRecorder()
	s.handler.ServeHTTP(w, r)
	if w.Code == 200 {
		t.Fatal("an OPTIONS with a body passed as a preflight")
	}
}
