package resolvertest

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authgear/authgear-forwardauth/resolver"
)

const (
	testHost     = "auth.example.test"
	callback     = "https://app.example.test/_forwardauth/callback"
	afterSignOut = "https://app.example.test/bye"
)

func newOAuthServer(t *testing.T) *Server {
	t.Helper()
	s := NewServer(testHost)
	t.Cleanup(s.Close)
	s.CookieDomain = "example.test"
	s.AddUser(resolver.Identity{UserID: "alice"})
	s.AddPassword("alice@example.test", "pw", "alice")
	s.AddClient(Client{ID: "c1", RedirectURIs: []string{callback}, PostLogoutRedirectURIs: []string{afterSignOut}})
	return s
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// send makes a request to the fake by its public host, with cookies as given.
func send(t *testing.T, s *Server, method, target string, form url.Values, cookies ...string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, s.URL+target, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = testHost
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if len(cookies) > 0 {
		req.Header.Set("Cookie", strings.Join(cookies, "; "))
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func authorizeQuery(kv ...string) string {
	q := url.Values{"client_id": {"c1"}, "response_type": {"none"}, "scope": {"openid"}, "redirect_uri": {callback}, "state": {"S1"}}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			q.Del(kv[i])
		} else {
			q.Set(kv[i], kv[i+1])
		}
	}
	return "/oauth2/authorize?" + q.Encode()
}

// returned checks resp redirects to base with the parameters want (plus
// x_traceparent) and nothing else.
func returned(t *testing.T, resp *http.Response, base string, want url.Values) {
	t.Helper()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("status %d, Location %q; want a redirect to %s", resp.StatusCode, resp.Header.Get("Location"), base)
	}
	q := loc.Query()
	if !strings.HasPrefix(q.Get("x_traceparent"), "00-") {
		t.Errorf("x_traceparent = %q", q.Get("x_traceparent"))
	}
	q.Del("x_traceparent")
	loc.RawQuery = ""
	if loc.String() != base || q.Encode() != want.Encode() {
		t.Errorf("redirected to %s with %v, want %s with %v", loc, q, base, want)
	}
}

func cookieOf(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestAuthorizeRefusesWithoutRedirect(t *testing.T) {
	s := newOAuthServer(t)
	for name, target := range map[string]string{
		"unknown client":            authorizeQuery("client_id", "c2"),
		"no client":                 authorizeQuery("client_id", ""),
		"redirect URI with a query": authorizeQuery("redirect_uri", callback+"?next=/deep"),
		"redirect URI deep link":    authorizeQuery("redirect_uri", "https://app.example.test/orders/42"),
		"redirect URI other case":   authorizeQuery("redirect_uri", strings.ToUpper(callback)),
		"redirect URI trailing /":   authorizeQuery("redirect_uri", callback+"/"),
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := send(t, s, "GET", target, nil)
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Errorf("status %d, Location %q; want 400 and no redirect", resp.StatusCode, resp.Header.Get("Location"))
			}
			if name != "unknown client" && name != "no client" && !strings.Contains(body, "redirect URI is not allowed") {
				t.Errorf("body %s", body)
			}
		})
	}
	if resp, _ := send(t, s, "GET", authorizeQuery(), nil); resp.StatusCode != http.StatusFound {
		t.Fatalf("a good request: status %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", s.URL+authorizeQuery(), nil)
	req.Host = "other.example.test"
	if resp, err := noRedirect.Do(req); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("another project's host: %v %v, want 404", resp, err)
	}
}

func TestAuthorizeErrorsAreRedirected(t *testing.T) {
	s := newOAuthServer(t)
	for _, tc := range []struct {
		name, target, code string
	}{
		{"response_type code", authorizeQuery("response_type", "code"), "unsupported_response_type"},
		{"no scope", authorizeQuery("scope", ""), "invalid_scope"},
		{"scope without openid", authorizeQuery("scope", "email"), "invalid_scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := send(t, s, "GET", tc.target, nil)
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if resp.StatusCode != http.StatusFound || loc.Query().Get("error") != tc.code || loc.Query().Get("state") != "S1" ||
				!strings.HasPrefix(loc.String(), callback+"?") {
				t.Errorf("status %d, Location %s; want error=%s back at the callback with the state", resp.StatusCode, loc, tc.code)
			}
		})
	}
	s.ForceAuthorizeError("server_error")
	resp, _ := send(t, s, "GET", authorizeQuery(), nil)
	if loc, _ := url.Parse(resp.Header.Get("Location")); loc.Query().Get("error") != "server_error" {
		t.Errorf("forced error: Location %s", loc)
	}
}

func TestSignInFormThenSingleSignOnThenSignOut(t *testing.T) {
	s := newOAuthServer(t)
	resp, _ := send(t, s, "GET", authorizeQuery(), nil)
	form := resp.Header.Get("Location")
	if !strings.HasPrefix(form, "/login?x_ref=") {
		t.Fatalf("no session: Location %q, want the sign-in form", form)
	}
	if _, body := send(t, s, "GET", form, nil); !strings.Contains(body, `id="signin"`) {
		t.Fatalf("form page: %s", body)
	}
	resp, _ = send(t, s, "POST", form, url.Values{"login": {"alice@example.test"}, "password": {"wrong"}, "action": {"sign_in"}})
	if resp.StatusCode != http.StatusUnauthorized || cookieOf(resp, "session") != nil {
		t.Fatalf("wrong password: status %d, cookie %v", resp.StatusCode, cookieOf(resp, "session"))
	}
	resp, _ = send(t, s, "POST", form, url.Values{"login": {"alice@example.test"}, "password": {"pw"}, "action": {"sign_in"}})
	returned(t, resp, callback, url.Values{"state": {"S1"}})
	session, strict := cookieOf(resp, "session"), cookieOf(resp, strictCookie)
	if session == nil || session.Domain != "example.test" || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Path != "/" {
		t.Fatalf("session cookie %+v, want Domain=example.test; Path=/; HttpOnly; SameSite=Lax", session)
	}
	if id, secret, ok := strings.Cut(session.Value, "."); !ok || len(id) != 36 || len(secret) != 32 {
		t.Errorf("session token %q, want <uuid>.<32 characters>", session.Value)
	}
	if strict == nil || strict.SameSite != http.SameSiteStrictMode || strict.Domain != "example.test" {
		t.Fatalf("companion cookie %+v, want SameSite=Strict on example.test", strict)
	}
	sessionCookie, strictCookieKV := "session="+session.Value, strictCookie+"="+strict.Value

	// The resolver knows the new session.
	req, _ := http.NewRequest("GET", s.ResolverURL().String(), nil)
	req.Host = testHost
	req.Header.Set("Cookie", sessionCookie)
	if r, err := http.DefaultClient.Do(req); err != nil || r.Header.Get(resolver.HeaderUserID) != "alice" {
		t.Fatalf("resolve: %v %v", r, err)
	}

	// Single sign-on: straight back, no form.
	before := s.OAuthCounts()
	resp, _ = send(t, s, "GET", authorizeQuery("state", "S2"), nil, sessionCookie)
	returned(t, resp, callback, url.Values{"state": {"S2"}})
	if after := s.OAuthCounts(); after.SingleSignOns != before.SingleSignOns+1 || after.FormsShown != before.FormsShown {
		t.Errorf("counts %+v then %+v", before, after)
	}

	// From another site (no Strict cookie): a confirmation page first.
	resp, body := send(t, s, "GET", "/oauth2/end_session?post_logout_redirect_uri="+url.QueryEscape(afterSignOut), nil, sessionCookie)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="signout"`) || s.sessionUserOf(session.Value) == "" {
		t.Fatalf("cross-site end_session: status %d, body %s", resp.StatusCode, body)
	}
	// An unregistered post-logout URI ends on the settings page.
	resp, _ = send(t, s, "GET", "/oauth2/end_session?post_logout_redirect_uri="+url.QueryEscape(afterSignOut+"?x=1"), nil, sessionCookie, strictCookieKV)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/settings" {
		t.Errorf("unregistered URI: status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if s.sessionUserOf(session.Value) != "" {
		t.Fatalf("the session survived end_session")
	}
	if c := cookieOf(resp, "session"); c == nil || c.MaxAge >= 0 || c.Domain != "example.test" {
		t.Errorf("clearing cookie %+v", c)
	}
	// The old cookie now resolves to valid: false.
	if r, err := http.DefaultClient.Do(req); err != nil || r.Header.Get(resolver.HeaderSessionValid) != "false" {
		t.Fatalf("resolve after sign-out: %v %v", r, err)
	}
	// And authorize shows the form again.
	resp, _ = send(t, s, "GET", authorizeQuery(), nil, sessionCookie)
	if !strings.HasPrefix(resp.Header.Get("Location"), "/login?x_ref=") {
		t.Errorf("after sign-out: Location %q, want the form", resp.Header.Get("Location"))
	}
}

func TestEndSessionReturnsToARegisteredURI(t *testing.T) {
	s := newOAuthServer(t)
	tok := SessionToken("tok")
	s.AddSession(Session, tok, "alice")
	resp, _ := send(t, s, "GET", "/oauth2/end_session?state=S9&post_logout_redirect_uri="+url.QueryEscape(afterSignOut), nil, "session="+tok, strictCookie+"=true")
	if got := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || got != afterSignOut+"?state=S9" {
		t.Errorf("status %d, Location %q; want %s?state=S9", resp.StatusCode, got, afterSignOut)
	}
	if s.OAuthCounts().SignOuts != 1 || s.sessionUserOf(tok) != "" {
		t.Errorf("counts %+v", s.OAuthCounts())
	}
}

func TestFormCancelAndBareLogin(t *testing.T) {
	s := newOAuthServer(t)
	resp, _ := send(t, s, "GET", authorizeQuery(), nil)
	resp, _ = send(t, s, "POST", resp.Header.Get("Location"), url.Values{"action": {"cancel"}})
	returned(t, resp, callback, url.Values{"error": {"access_denied"}, "error_description": {"the user cancelled"}, "state": {"S1"}})

	// return_to is ignored: a bare sign-in lands on Authgear's own pages.
	resp, _ = send(t, s, "POST", "/login?return_to="+url.QueryEscape("https://app.example.test/deep"),
		url.Values{"login": {"alice@example.test"}, "password": {"pw"}, "action": {"sign_in"}})
	if resp.Header.Get("Location") != "/settings" || cookieOf(resp, "session") == nil {
		t.Errorf("bare /login: Location %q", resp.Header.Get("Location"))
	}
}

// sessionUserOf is the user of an IdP session token, "" when none.
func (s *Server) sessionUserOf(token string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[sessionKey{Session, token}]
}
