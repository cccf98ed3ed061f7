package handler

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgear/authgear-forwardauth/internal/clocktest"
	"github.com/authgear/authgear-forwardauth/resolver"
	"github.com/authgear/authgear-forwardauth/resolver/resolvertest"
	"github.com/authgear/authgear-forwardauth/signin"
)

const (
	stateSecret   = "state-secret-0123456789abcdef0123"
	testClientID  = "client-1"
	signOutTarget = "https://www.example/bye"
)

// signinLogin is the built-in sign-in as main configures it, returning to
// app.example, *.apps.example and app.example:8443.
func signinLogin(t testing.TB, clock *clocktest.Clock, callback string) LoginConfig {
	t.Helper()
	state, err := signin.NewSigner([]byte(stateSecret), 10*time.Minute, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	ep, _ := url.Parse("https://auth.example")
	out, _ := url.Parse(signOutTarget)
	s := &SigninConfig{Endpoint: ep, ClientID: testClientID, State: state, SignOutRedirect: out}
	if callback != "" {
		s.CallbackURL, _ = url.Parse(callback)
	}
	return LoginConfig{ReturnHosts: []string{"app.example", "*.apps.example", "app.example:8443"}, Signin: s}
}

func newClock() *clocktest.Clock { return clocktest.New(time.Unix(1_800_000_000, 0)) }

func browserHeader(extra ...string) http.Header {
	return hdr(append([]string{"Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"}, extra...)...)
}

func traefikOriginal(proto, host, uri string) []string {
	return []string{"X-Forwarded-Method", "GET", "X-Forwarded-Proto", proto, "X-Forwarded-Host", host, "X-Forwarded-Uri", uri}
}

// authorizeOf checks loc is Authgear's authorize URL with the fixed
// parameters and returns its redirect_uri and the deep link its state
// carries.
func authorizeOf(t *testing.T, login LoginConfig, loc string) (redirectURI, deepLink string) {
	t.Helper()
	u, err := url.Parse(loc)
	if err != nil || u.Scheme != "https" || u.Host != "auth.example" || u.Path != "/oauth2/authorize" {
		t.Fatalf("Location = %q, want https://auth.example/oauth2/authorize?...", loc)
	}
	q := u.Query()
	for k, want := range map[string]string{"client_id": testClientID, "response_type": "none", "scope": "openid"} {
		if got := q[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if len(q) != 5 {
		t.Errorf("authorize parameters %v, want exactly client_id, response_type, scope, redirect_uri, state", q)
	}
	st, err := login.Signin.State.Verify(q.Get("state"))
	if err != nil {
		t.Fatalf("state %q: %v", q.Get("state"), err)
	}
	return q.Get("redirect_uri"), st.ReturnURL.String()
}

func TestSigninRedirectToAuthorize(t *testing.T) {
	clock := newClock()
	login := signinLogin(t, clock, "")
	tests := []struct {
		name              string
		header            http.Header
		status            int
		callback, return_ string // "" when no Location is expected
	}{
		{"traefik: 302, the callback on the app's own host", browserHeader(traefikOriginal("https", "app.example", "/orders/42?tab=items")...), 302,
			"https://app.example/_forwardauth/callback", "https://app.example/orders/42?tab=items"},
		{"nginx: 401 with Location", browserHeader("X-Original-Method", "GET", "X-Original-Url", "https://x.apps.example/a/b?c=d"), 401,
			"https://x.apps.example/_forwardauth/callback", "https://x.apps.example/a/b?c=d"},
		{"the original scheme is kept", browserHeader(traefikOriginal("http", "app.example", "/p")...), 302,
			"http://app.example/_forwardauth/callback", "http://app.example/p"},
		{"a port LOGIN_RETURN_HOSTS names", browserHeader(traefikOriginal("https", "app.example:8443", "/p")...), 302,
			"https://app.example:8443/_forwardauth/callback", "https://app.example:8443/p"},
		{"a port LOGIN_RETURN_HOSTS does not name: 401", browserHeader(traefikOriginal("https", "app.example:9999", "/p")...), 401, "", ""},
		{"a wildcard with no port does not take a port: 401", browserHeader(traefikOriginal("https", "x.apps.example:8443", "/p")...), 401, "", ""},
		{"user info is dropped", browserHeader("X-Original-Method", "GET", "X-Original-Url", "https://user:pw@app.example/"), 401,
			"https://app.example/_forwardauth/callback", "https://app.example/"},
		{"a default port is dropped", browserHeader(traefikOriginal("https", "app.example:443", "/p")...), 302,
			"https://app.example/_forwardauth/callback", "https://app.example/p"},
		{"host outside LOGIN_RETURN_HOSTS: 401", browserHeader(traefikOriginal("https", "evil.example", "/")...), 401, "", ""},
		{"API client: 401", hdr(append([]string{"Accept", "application/json"}, traefikOriginal("https", "app.example", "/api")...)...), 401, "", ""},
		{"fetch(): 401", browserHeader(append([]string{"Sec-Fetch-Mode", "cors"}, traefikOriginal("https", "app.example", "/")...)...), 401, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t, stackOptions{trusted: testProxies, login: login})
			w := s.do("GET", "/auth", tt.header)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d", w.Code, tt.status)
			}
			loc := w.Header().Get("Location")
			if tt.callback == "" {
				if loc != "" {
					t.Fatalf("Location = %q, want none", loc)
				}
				return
			}
			cb, deep := authorizeOf(t, login, loc)
			if cb != tt.callback || deep != tt.return_ {
				t.Errorf("redirect_uri %q, deep link %q; want %q, %q", cb, deep, tt.callback, tt.return_)
			}
		})
	}
	t.Run("SIGNIN_CALLBACK_URL is the one callback", func(t *testing.T) {
		fixed := signinLogin(t, clock, "https://login.example/_forwardauth/callback")
		s := newStack(t, stackOptions{trusted: testProxies, login: fixed})
		w := s.do("GET", "/auth", browserHeader(traefikOriginal("https", "x.apps.example", "/deep")...))
		cb, deep := authorizeOf(t, fixed, w.Header().Get("Location"))
		if cb != "https://login.example/_forwardauth/callback" || deep != "https://x.apps.example/deep" {
			t.Errorf("redirect_uri %q, deep link %q", cb, deep)
		}
	})
	t.Run("a very long deep link lands on its page", func(t *testing.T) {
		s := newStack(t, stackOptions{trusted: testProxies, login: login})
		w := s.do("GET", "/auth", browserHeader(traefikOriginal("https", "app.example", "/page?q="+strings.Repeat("x", 3000))...))
		if _, deep := authorizeOf(t, login, w.Header().Get("Location")); deep != "https://app.example/page" {
			t.Errorf("deep link %q", deep)
		}
		if n := len(w.Header().Get("Location")); n > 3000 {
			t.Errorf("Location of %d bytes: too long for nginx's 4 KiB header buffer", n)
		}
	})
}

// signedState is a state for raw, made by the login's own signer.
func signedState(t *testing.T, login LoginConfig, raw string) string {
	t.Helper()
	u, _ := url.Parse(raw)
	st, err := login.Signin.State.Sign(u)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// checkPage checks a refusal page: status, the fixed headers, its one link,
// and that nothing of the request is in it.
func checkPage(t *testing.T, w interface {
	Result() *http.Response
}, status int, link string, notShown ...string) string {
	t.Helper()
	resp := w.Result()
	body := new(strings.Builder)
	_, _ = io.Copy(body, resp.Body)
	if resp.StatusCode != status {
		t.Errorf("status %d, want %d; body %s", resp.StatusCode, status, body)
	}
	for k, want := range map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Cache-Control":           "no-store",
		"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
		"X-Content-Type-Options":  "nosniff",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if resp.Header.Get("Location") != "" {
		t.Errorf("a refusal redirects to %q", resp.Header.Get("Location"))
	}
	if want := `href="` + strings.ReplaceAll(link, "&", "&amp;") + `"`; !strings.Contains(body.String(), want) {
		t.Errorf("page has no link %s:\n%s", want, body)
	}
	for _, s := range notShown {
		if strings.Contains(body.String(), s) {
			t.Errorf("page shows %q from the request:\n%s", s, body)
		}
	}
	return body.String()
}

func TestCallback(t *testing.T) {
	clock := newClock()
	login := signinLogin(t, clock, "")
	s := newStack(t, stackOptions{trusted: testProxies, login: login})
	cookie := hdr("Cookie", "session="+aliceIDP)
	deep := "https://app.example/orders/42?tab=items&x=%2F"
	good := signedState(t, login, deep)

	t.Run("a good state returns to the deep link, x_traceparent ignored", func(t *testing.T) {
		w := s.do("GET", "/_forwardauth/callback?state="+good+"&x_traceparent=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", cookie)
		if w.Code != 302 || w.Header().Get("Location") != deep {
			t.Fatalf("status %d, Location %q; want 302 to %s", w.Code, w.Header().Get("Location"), deep)
		}
		if w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control = %q", w.Header().Get("Cache-Control"))
		}
	})
	t.Run("another Authgear cookie also counts", func(t *testing.T) {
		w := s.do("GET", "/_forwardauth/callback?state="+good, hdr("Cookie", "app_session=x"))
		if w.Code != 302 {
			t.Fatalf("status %d", w.Code)
		}
	})
	t.Run("tampered state", func(t *testing.T) {
		p, m, _ := strings.Cut(good, ".")
		forged := p[:len(p)-4] + "AAAA." + m
		w := s.do("GET", "/_forwardauth/callback?state="+url.QueryEscape(forged), cookie)
		checkPage(t, w, 400, "/", "AAAA", "orders")
	})
	t.Run("garbage state", func(t *testing.T) {
		w := s.do("GET", "/_forwardauth/callback?state=%3Cscript%3Ealert(1)%3C/script%3E", cookie)
		checkPage(t, w, 400, "/", "<script", "alert")
	})
	t.Run("no state", func(t *testing.T) {
		checkPage(t, s.do("GET", "/_forwardauth/callback", cookie), 400, "/")
	})
	t.Run("two states", func(t *testing.T) {
		checkPage(t, s.do("GET", "/_forwardauth/callback?state="+good+"&state="+good, cookie), 400, "/")
	})
	t.Run("a state for a host outside LOGIN_RETURN_HOSTS", func(t *testing.T) {
		evil := signedState(t, login, "https://evil.example/steal")
		checkPage(t, s.do("GET", "/_forwardauth/callback?state="+evil, cookie), 400, "/", "evil")
	})
	t.Run("Authgear's error: not reflected, try again at the deep link", func(t *testing.T) {
		w := s.do("GET", "/_forwardauth/callback?error=access_denied&error_description=%3Cb%3ECall+555-0100%3C%2Fb%3E&state="+good, cookie)
		checkPage(t, w, 403, deep, "access_denied", "555-0100", "<b>")
	})
	t.Run("Authgear's error with a bad state", func(t *testing.T) {
		w := s.do("GET", "/_forwardauth/callback?error=server_error&state=nope", cookie)
		checkPage(t, w, 400, "/", "server_error", "nope")
	})
	t.Run("no Authgear cookie: the cookie domain is wrong, no loop", func(t *testing.T) {
		w := s.do("GET", "/_forwardauth/callback?state="+good, hdr("Cookie", "other=1"))
		checkPage(t, w, 500, deep)
	})
	t.Run("expired state", func(t *testing.T) {
		st := signedState(t, login, deep)
		clock.Advance(10 * time.Minute)
		defer clock.Advance(-10 * time.Minute)
		checkPage(t, s.do("GET", "/_forwardauth/callback?state="+st, cookie), 400, deep)
	})
	t.Run("other methods", func(t *testing.T) {
		if w := s.do("POST", "/_forwardauth/callback?state="+good, cookie); w.Code != 405 {
			t.Errorf("POST: status %d, want 405", w.Code)
		}
	})
	t.Run("counted", func(t *testing.T) {
		for outcome, want := range map[string]float64{"returned": 2, "bad_state": 5, "expired": 1, "host_refused": 1, "authgear_error": 1, "no_cookie": 1} {
			if got := counterValue(t, s.reg, "forwardauth_signin_total", "callback", outcome); got != want {
				t.Errorf("callback %s = %v, want %v", outcome, got, want)
			}
		}
	})
}

func counterValue(t *testing.T, reg *prometheus.Registry, name, step, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["step"] == step && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}

func TestLoginURLWithSignin(t *testing.T) {
	login := signinLogin(t, newClock(), "")
	login.URL, _ = url.Parse("https://www.example/welcome")
	login.ReturnParam = "return_to"
	s := newStack(t, stackOptions{trusted: testProxies, login: login})
	w := s.do("GET", "/auth", browserHeader(traefikOriginal("https", "app.example", "/deep")...))
	if got := w.Header().Get("Location"); w.Code != 302 || got != "https://www.example/welcome?return_to=https%3A%2F%2Fapp.example%2Fdeep" {
		t.Fatalf("status %d, Location %q; want LOGIN_URL's page", w.Code, got)
	}
	// The page's "Sign in" link goes on through the service.
	w = s.do("GET", "/_forwardauth/sign_in?rd="+url.QueryEscape("https://app.example/deep"), nil)
	if _, deep := authorizeOf(t, login, w.Header().Get("Location")); w.Code != 302 || deep != "https://app.example/deep" {
		t.Fatalf("sign_in: status %d, deep link %q", w.Code, deep)
	}
}

func TestSigninRoutesOffWithoutClientID(t *testing.T) {
	loginURL, _ := url.Parse("https://auth.example/login")
	s := newStack(t, stackOptions{trusted: testProxies, login: LoginConfig{URL: loginURL, ReturnParam: "return_to", ReturnHosts: []string{"app.example"}}})
	for _, p := range []string{"/_forwardauth/callback?state=x", "/_forwardauth/sign_in?rd=https://app.example/", "/_forwardauth/sign_out"} {
		if w := s.do("GET", p, nil); w.Code != 404 {
			t.Errorf("GET %s: status %d, want 404", p, w.Code)
		}
	}
}

func TestSignIn(t *testing.T) {
	login := signinLogin(t, newClock(), "")
	s := newStack(t, stackOptions{trusted: testProxies, login: login})
	t.Run("rd within LOGIN_RETURN_HOSTS", func(t *testing.T) {
		w := s.do("GET", "/_forwardauth/sign_in?rd="+url.QueryEscape("https://x.apps.example/public/page?a=1"), nil)
		if w.Code != 302 {
			t.Fatalf("status %d", w.Code)
		}
		cb, deep := authorizeOf(t, login, w.Header().Get("Location"))
		if cb != "https://x.apps.example/_forwardauth/callback" || deep != "https://x.apps.example/public/page?a=1" {
			t.Errorf("redirect_uri %q, deep link %q", cb, deep)
		}
	})
	for name, q := range map[string]string{
		"no rd":           "",
		"rd elsewhere":    "?rd=https://evil.example/",
		"relative rd":     "?rd=/page",
		"rd with a user":  "?rd=https://u@app.example/",
		"two rd":          "?rd=https://app.example/&rd=https://app.example/",
		"javascript: rd":  "?rd=javascript:alert(1)",
		"rd with bad URL": "?rd=https://app.example/%zz",
	} {
		t.Run(name, func(t *testing.T) {
			checkPage(t, s.do("GET", "/_forwardauth/sign_in"+q, nil), 400, "/", "evil", "alert")
		})
	}
}

func TestSignOutPurgesThenEndsTheSession(t *testing.T) {
	login := signinLogin(t, newClock(), "")
	s := newStack(t, stackOptions{trusted: testProxies, login: login})
	app := browserHeader(traefikOriginal("https", "app.example", "/")...)
	app.Set("Cookie", "session="+aliceIDP)
	if w := s.do("GET", "/auth", app); w.Code != 200 {
		t.Fatalf("signed in: status %d", w.Code)
	}
	if w := s.do("GET", "/auth", app); w.Code != 200 || s.authgear.Calls() != 1 {
		t.Fatalf("the allow is not cached: status %d, %d resolver calls", w.Code, s.authgear.Calls())
	}

	w := s.do("GET", "/_forwardauth/sign_out", hdr("Cookie", "session="+aliceIDP+"; theme=dark"))
	if w.Code != 302 {
		t.Fatalf("sign-out: status %d", w.Code)
	}
	want := "https://auth.example/oauth2/end_session?post_logout_redirect_uri=" + url.QueryEscape(signOutTarget)
	if got := w.Header().Get("Location"); got != want {
		t.Fatalf("Location = %q, want %q", got, want)
	}
	// What end_session does at Authgear; the cached allow must be gone.
	s.authgear.RevokeSession(resolvertest.Session, aliceIDP)
	if w := s.do("GET", "/auth", app); w.Code != 302 {
		t.Errorf("after sign-out: status %d, want the sign-in redirect", w.Code)
	}
	if s.authgear.Calls() != 2 {
		t.Errorf("%d resolver calls, want 2: the decision after sign-out came from the cache", s.authgear.Calls())
	}
	if got := counterValue(t, s.reg, "forwardauth_signin_total", "sign_out", "signed_out"); got != 1 {
		t.Errorf("sign_out signed_out = %v", got)
	}
}

// TestSignOutReadsCredentialsAsAuthDoes: a misshapen cookie beside a good
// one never reached the cache, so the set purged is the good one alone, the
// key /auth cached.
func TestSignOutReadsCredentialsAsAuthDoes(t *testing.T) {
	login := signinLogin(t, newClock(), "")
	p := &fakePurger{}
	reg := prometheus.NewRegistry()
	h := handleSignOut(login, newCookieNames(""), &resolver.Shapes{}, p, newPurgeCounter(reg).WithLabelValues(causeSignOut), newSigninCounters(reg), discard)
	r := httptest.NewRequest("GET", "/_forwardauth/sign_out", nil)
	r.Header.Set("Cookie", "app_session=garbage; session="+aliceIDP)
	h.ServeHTTP(httptest.NewRecorder(), r)
	if len(p.creds) != 1 || p.creds[0] != (resolver.Credentials{Session: aliceIDP}) {
		t.Fatalf("purged %+v, want the session alone", p.creds)
	}
}

func TestSignOut(t *testing.T) {
	sTok, aTok := resolvertest.SessionToken("S"), resolvertest.Token("A")
	login := signinLogin(t, newClock(), "")
	newOut := func(err error) (http.Handler, *fakePurger, *prometheus.CounterVec) {
		p := &fakePurger{err: err}
		reg := prometheus.NewRegistry()
		purges := newPurgeCounter(reg)
		return handleSignOut(login, newCookieNames(""), &resolver.Shapes{}, p, purges.WithLabelValues(causeSignOut), newSigninCounters(reg), discard), p, purges
	}
	endSession := func(target string) string {
		return "https://auth.example/oauth2/end_session?post_logout_redirect_uri=" + url.QueryEscape(target)
	}
	for _, tt := range []struct {
		name, method, target, cookie string
		status                       int
		location                     string
		purged                       int // credential sets
	}{
		{"rd within LOGIN_RETURN_HOSTS", "GET", "/_forwardauth/sign_out?rd=" + url.QueryEscape("https://x.apps.example/see-you?a=1"), "session=" + sTok, 302, endSession("https://x.apps.example/see-you?a=1"), 1},
		{"rd elsewhere: SIGNOUT_REDIRECT_URL", "GET", "/_forwardauth/sign_out?rd=https://evil.example/", "session=" + sTok, 302, endSession(signOutTarget), 1},
		{"rd with a port not named", "GET", "/_forwardauth/sign_out?rd=https://app.example:1/", "session=" + sTok, 302, endSession(signOutTarget), 1},
		{"POST from a form: 303", "POST", "/_forwardauth/sign_out", "session=" + sTok, 303, endSession(signOutTarget), 1},
		{"no credential: nothing to purge", "GET", "/_forwardauth/sign_out", "theme=dark", 302, endSession(signOutTarget), 0},
		{"each credential alone too", "GET", "/_forwardauth/sign_out", "session=" + sTok + "; app_session=" + aTok, 302, endSession(signOutTarget), 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, p, purges := newOut(nil)
			r, _ := http.NewRequest(tt.method, tt.target, nil)
			r.Header.Set("Cookie", tt.cookie)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.status || w.Header().Get("Location") != tt.location {
				t.Fatalf("status %d, Location %q; want %d, %q", w.Code, w.Header().Get("Location"), tt.status, tt.location)
			}
			if len(p.creds) != tt.purged {
				t.Fatalf("purged %d credential sets %v, want %d", len(p.creds), p.creds, tt.purged)
			}
			if tt.purged > 0 && p.creds[0].Session != sTok {
				t.Errorf("purged %+v first, want the request's credentials", p.creds[0])
			}
			if tt.purged == 3 && (p.creds[1].AppSession != aTok || p.creds[1].Session != "" || p.creds[2].Session != sTok || p.creds[2].AppSession != "") {
				t.Errorf("purged %+v, want the pair then each alone", p.creds)
			}
			want := 0.0
			if tt.purged > 0 {
				want = 1
			}
			if got := testutil.ToFloat64(purges.WithLabelValues(causeSignOut)); got != want {
				t.Errorf("forwardauth_purges_total{cause=sign_out} = %v, want %v", got, want)
			}
		})
	}
	t.Run("a failed purge is a 503 page, no redirect", func(t *testing.T) {
		h, _, _ := newOut(errors.New("redis: connection refused"))
		r, _ := http.NewRequest("GET", "/_forwardauth/sign_out?rd=https://app.example/x", nil)
		r.Header.Set("Cookie", "session="+sTok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		checkPage(t, w, 503, "/_forwardauth/sign_out", "refused", "redis")
	})
}
