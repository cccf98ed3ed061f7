//go:build e2e

package e2e

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/authgear/authgear-forwardauth/resolver"
	"github.com/authgear/authgear-forwardauth/resolver/resolvertest"
)

const (
	acceptHTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	acceptJSON = "application/json"
)

// spoofed is what a malicious client sends along: identity headers claiming
// to be an admin.
var spoofed = []string{
	resolver.HeaderUserID, "admin",
	resolver.HeaderUserRoles, "admin",
	resolver.HeaderSessionValid, "true",
	resolver.HeaderUserVerified, "true",
	resolver.HeaderUserAnonymous, "false",
	resolver.HeaderUserCanReauth, "true",
	resolver.HeaderSessionAMR, "pwd",
	resolver.HeaderSessionAuthTime, "1",
}

func with(pairs ...[]string) []string {
	var out []string
	for _, p := range pairs {
		out = append(out, p...)
	}
	return out
}

func bearer(token string) []string { return []string{"Authorization", "Bearer " + token} }

// TestGateways runs the same contract through each real gateway.
func TestGateways(t *testing.T) {
	st := newStack(t)
	for _, gw := range gateways {
		t.Run(gw.name, func(t *testing.T) {
			base := gw.start(t, st)
			for _, c := range contract {
				t.Run(c.name, func(t *testing.T) { c.run(t, st, base, gw.name) })
			}
		})
	}
}

var contract = []struct {
	name string
	run  func(t *testing.T, st *stack, base, gw string)
}{
	{"allow/every identity header reaches the upstream, spoofed ones do not", func(t *testing.T, st *stack, base, _ string) {
		r := do(t, base, "GET", "/hello?x=1&y=a%20b", "", with(bearer(tokenAlice), []string{"Accept", acceptJSON}, spoofed)...)
		e := allowed(t, st, r)
		if e.Method != "GET" || e.URI != "/hello?x=1&y=a%20b" {
			t.Errorf("upstream saw %s %s, want GET /hello?x=1&y=a%%20b", e.Method, e.URI)
		}
		expectIdentity(t, e, userAlice)
	}},
	{"allow/session cookie", func(t *testing.T, st *stack, base, _ string) {
		r := do(t, base, "GET", "/hello", "", with([]string{"Cookie", "session=" + sessionAlice, "Accept", acceptHTML}, spoofed)...)
		expectIdentity(t, allowed(t, st, r), userAlice)
	}},
	{"allow/POST with its body and method reaches the upstream", func(t *testing.T, st *stack, base, _ string) {
		r := do(t, base, "POST", "/submit?step=2", "a=1&b=2", with(bearer(tokenAlice), []string{"Content-Type", "application/x-www-form-urlencoded"}, spoofed)...)
		e := allowed(t, st, r)
		if e.Method != "POST" || e.URI != "/submit?step=2" || e.Body != "a=1&b=2" {
			t.Errorf("upstream saw %s %s body %q, want POST /submit?step=2 body a=1&b=2", e.Method, e.URI, e.Body)
		}
		expectIdentity(t, e, userAlice)
	}},
	{"deny/401 without credential", func(t *testing.T, st *stack, base, _ string) {
		r := do(t, base, "GET", "/hello", "", "Accept", acceptJSON)
		blocked(t, st, r, http.StatusUnauthorized)
		if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
			t.Errorf("WWW-Authenticate = %q, want Bearer...", got)
		}
		if loc := r.header.Get("Location"); loc != "" {
			t.Errorf("an API client got Location %q", loc)
		}
	}},
	{"deny/401 with spoofed identity headers and no credential", func(t *testing.T, st *stack, base, _ string) {
		r := do(t, base, "GET", "/hello", "", with([]string{"Accept", acceptJSON}, spoofed)...)
		blocked(t, st, r, http.StatusUnauthorized)
	}},
	{"deny/401 with an invalid token", func(t *testing.T, st *stack, base, _ string) {
		r := do(t, base, "GET", "/hello", "", with(bearer(tokenUnknown), []string{"Accept", acceptJSON}, spoofed)...)
		blocked(t, st, r, http.StatusUnauthorized)
	}},
	{"policy/403 when the user lacks the route's role", func(t *testing.T, st *stack, base, _ string) {
		r := do(t, base, "GET", "/admin/panel", "", with(bearer(tokenAlice), spoofed)...)
		blocked(t, st, r, http.StatusForbidden)
	}},
	{"policy/200 when the user has the route's role", func(t *testing.T, st *stack, base, _ string) {
		r := do(t, base, "GET", "/admin/panel", "", bearer(tokenAdmin)...)
		e := allowed(t, st, r)
		if e.URI != "/admin/panel" {
			t.Errorf("upstream saw %s, want /admin/panel", e.URI)
		}
		expectIdentity(t, e, userAdmin)
	}},
	{"policy/403 for an anonymous user", func(t *testing.T, st *stack, base, _ string) {
		r := do(t, base, "GET", "/hello", "", with(bearer(tokenAnon), spoofed)...)
		blocked(t, st, r, http.StatusForbidden)
	}},
	{"policy/the client's query string cannot change the policy", func(t *testing.T, st *stack, base, _ string) {
		r := do(t, base, "GET", "/admin/panel?roles=editor&optional=true", "", bearer(tokenAlice)...)
		blocked(t, st, r, http.StatusForbidden)
		r = do(t, base, "GET", "/hello?allow_anonymous=true&optional", "", bearer(tokenAnon)...)
		blocked(t, st, r, http.StatusForbidden)
		r = do(t, base, "GET", "/hello?roles=nobody&require_verified&bogus=1", "", bearer(tokenAlice)...)
		e := allowed(t, st, r)
		if e.URI != "/hello?roles=nobody&require_verified&bogus=1" {
			t.Errorf("upstream saw %s", e.URI)
		}
	}},
	{"optional/no credential: 200 and spoofed identity stripped", func(t *testing.T, st *stack, base, _ string) {
		r := do(t, base, "GET", "/public/page", "", with([]string{"Accept", acceptHTML}, spoofed)...)
		expectNoIdentity(t, allowed(t, st, r))
	}},
	{"optional/invalid token: 200 and spoofed identity stripped", func(t *testing.T, st *stack, base, _ string) {
		r := do(t, base, "GET", "/public/page", "", with(bearer(tokenUnknown), spoofed)...)
		expectNoIdentity(t, allowed(t, st, r))
	}},
	{"optional/signed-in user is identified", func(t *testing.T, st *stack, base, _ string) {
		r := do(t, base, "GET", "/public/page", "", with(bearer(tokenAlice), spoofed)...)
		expectIdentity(t, allowed(t, st, r), userAlice)
	}},
	{"login/browser navigation is redirected with the original absolute URL", func(t *testing.T, st *stack, base, _ string) {
		r := do(t, base, "GET", "/some/page?q=1&r=a%20b", "", with([]string{"Accept", acceptHTML}, spoofed)...)
		blocked(t, st, r, http.StatusFound)
		expectLogin(t, r, "http://"+appHost+"/some/page?q=1&r=a%20b")
	}},
	{"login/spoofed original-URL headers cannot choose the return URL", func(t *testing.T, st *stack, base, _ string) {
		r := do(t, base, "GET", "/page", "", "Accept", acceptHTML,
			"X-Original-URL", "http://evil.example/steal", "X-Original-URI", "/steal",
			"X-Forwarded-Host", "evil.example", "X-Forwarded-Uri", "/steal", "X-Forwarded-Proto", "https")
		blocked(t, st, r, http.StatusFound)
		expectLogin(t, r, "http://"+appHost+"/page")
	}},
	{"login/XHR gets 401, not a redirect", func(t *testing.T, st *stack, base, _ string) {
		r := do(t, base, "GET", "/some/page", "", "Accept", acceptHTML, "X-Requested-With", "XMLHttpRequest")
		blocked(t, st, r, http.StatusUnauthorized)
	}},
	{"login/fetch() from a page gets 401, not a redirect (Sec-Fetch-Mode reaches the service)", func(t *testing.T, st *stack, base, _ string) {
		r := do(t, base, "GET", "/some/page", "", "Accept", acceptHTML, "Sec-Fetch-Mode", "cors")
		blocked(t, st, r, http.StatusUnauthorized)
	}},
	{"login/API client gets 401, not a redirect", func(t *testing.T, st *stack, base, _ string) {
		r := do(t, base, "GET", "/some/page", "", "Accept", acceptJSON)
		blocked(t, st, r, http.StatusUnauthorized)
	}},
	{"login/a browser POST gets 401: the original method reaches the service", func(t *testing.T, st *stack, base, _ string) {
		r := do(t, base, "POST", "/form", "a=1", "Accept", acceptHTML, "Content-Type", "application/x-www-form-urlencoded")
		blocked(t, st, r, http.StatusUnauthorized)
	}},
	{"preflight/OPTIONS is allowed without credentials", func(t *testing.T, st *stack, base, _ string) {
		r := do(t, base, "OPTIONS", "/api/thing", "", with([]string{"Origin", "https://other.example", "Access-Control-Request-Method", "POST"}, spoofed)...)
		e := allowed(t, st, r)
		if e.Method != "OPTIONS" || e.URI != "/api/thing" {
			t.Errorf("upstream saw %s %s, want OPTIONS /api/thing", e.Method, e.URI)
		}
		expectNoIdentity(t, e)
	}},
	{"preflight/a spoofed original method cannot fake a preflight", func(t *testing.T, st *stack, base, _ string) {
		r := do(t, base, "GET", "/api/thing", "", "Accept", acceptJSON, "Access-Control-Request-Method", "POST",
			"X-Original-Method", "OPTIONS", "X-Forwarded-Method", "OPTIONS")
		blocked(t, st, r, http.StatusUnauthorized)
	}},
	{"routes/the service's own /_forwardauth/ pages skip the check; the auth locations are not public", func(t *testing.T, st *stack, base, _ string) {
		// This stack uses LOGIN_URL, so the service has no sign-in pages: its
		// 404, not the login redirect, shows the gateway sent it there.
		r := do(t, base, "GET", "/_forwardauth/callback?state=x", "", "Accept", acceptHTML)
		blocked(t, st, r, http.StatusNotFound)
		for _, uri := range []string{"/_authgear_auth", "/_authgear_auth_admin", "/_authgear_auth_optional"} {
			r := do(t, base, "GET", uri, "", "Accept", acceptJSON)
			if r.status != http.StatusNotFound && r.status != http.StatusUnauthorized {
				t.Errorf("GET %s: status %d, want 404 (nginx: internal) or 401 (an app path)", uri, r.status)
			}
			if st.upstream.reached(r.id) {
				t.Errorf("GET %s reached the upstream", uri)
			}
		}
	}},
	{"outage/Authgear down: 5xx and the upstream is not reached", func(t *testing.T, st *stack, base, gw string) {
		// A credential that is valid but was never resolved, so no cache holds it.
		token := resolvertest.Token("tokenFresh" + gw)
		st.authgear.AddSession(resolvertest.Bearer, token, userAlice.UserID)
		st.authgear.SetFailure(resolvertest.Status500)
		defer st.authgear.SetFailure(resolvertest.OK)
		before := st.authgear.Calls()
		r := do(t, base, "GET", "/hello", "", with(bearer(token), spoofed)...)
		if r.status < 500 || r.status > 599 {
			t.Errorf("status %d, want 5xx; body %s", r.status, r.body)
		}
		if st.upstream.reached(r.id) {
			t.Errorf("the upstream was reached")
		}
		if st.authgear.Calls() == before {
			t.Errorf("Authgear was not called")
		}
	}},
}

// allowed checks the request got through and returns what the upstream saw.
func allowed(t *testing.T, st *stack, r result) echo {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200; Location %q; body %s", r.status, r.header.Get("Location"), r.body)
	}
	if !st.upstream.reached(r.id) {
		t.Fatalf("the upstream was not reached")
	}
	return r.echoed(t)
}

// blocked checks the request got status want and never reached the upstream.
func blocked(t *testing.T, st *stack, r result, want int) {
	t.Helper()
	if r.status != want {
		t.Errorf("status %d, want %d; Location %q; body %s", r.status, want, r.header.Get("Location"), r.body)
	}
	if st.upstream.reached(r.id) {
		t.Errorf("the upstream was reached")
	}
}

func identityValues(id resolver.Identity) map[string]string {
	return map[string]string{
		resolver.HeaderUserID:          id.UserID,
		resolver.HeaderUserAnonymous:   strconv.FormatBool(id.Anonymous),
		resolver.HeaderUserVerified:    strconv.FormatBool(id.Verified),
		resolver.HeaderUserCanReauth:   strconv.FormatBool(id.CanReauthenticate),
		resolver.HeaderUserRoles:       strings.Join(id.Roles, ","),
		resolver.HeaderSessionAMR:      strings.Join(id.AMR, " "),
		resolver.HeaderSessionAuthTime: strconv.FormatInt(id.AuthenticatedAt, 10),
		resolver.HeaderSessionValid:    "true",
	}
}

// expectIdentity checks the upstream saw exactly one value of every identity
// header, the user's.
func expectIdentity(t *testing.T, e echo, id resolver.Identity) {
	t.Helper()
	want := identityValues(id)
	for _, h := range resolver.IdentityHeaders() {
		got := e.Headers[h]
		if len(got) != 1 || got[0] != want[h] {
			t.Errorf("upstream saw %s: %q, want [%q]", h, got, want[h])
		}
	}
}

// expectNoIdentity checks the upstream saw no identity: every identity header
// absent or empty (gateways differ), except X-Authgear-Session-Valid, which
// may also say "false" (the service sends that), never "true".
func expectNoIdentity(t *testing.T, e echo) {
	t.Helper()
	for _, h := range resolver.IdentityHeaders() {
		for _, v := range e.Headers[h] {
			if v != "" && (h != resolver.HeaderSessionValid || v != "false") {
				t.Errorf("upstream saw %s: %q, want none or empty", h, e.Headers[h])
				break
			}
		}
	}
}

// expectLogin checks r redirects to LOGIN_URL with return_to=returnTo.
func expectLogin(t *testing.T, r result, returnTo string) {
	t.Helper()
	loc := r.header.Get("Location")
	u, err := url.Parse(loc)
	if err != nil || loc == "" {
		t.Fatalf("Location %q: %v", loc, err)
	}
	login, _ := url.Parse(loginURL)
	if u.Scheme != login.Scheme || u.Host != login.Host || u.Path != login.Path {
		t.Errorf("Location %q does not point at LOGIN_URL %s", loc, loginURL)
	}
	if got := u.Query()["return_to"]; len(got) != 1 || got[0] != returnTo {
		t.Errorf("Location %q: return_to %q, want %q", loc, got, returnTo)
	}
}
