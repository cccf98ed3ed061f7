package resolvertest

import (
	"crypto/rand"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// The fake's browser side, as authgear-server behaves on a custom domain
// whose cookie domain is the apps' parent (see authgear-facts.md, "Browser
// sign-in and sign-out"):
//
//   - GET /oauth2/authorize needs a known client_id and a redirect_uri equal
//     to one of the client's exactly, else a 400 page and no redirect; then
//     response_type=none and a scope with openid, else an error redirect. An
//     IdP session cookie signs the browser in at once (single sign-on);
//     otherwise the browser goes to the sign-in form at /login?x_ref=...
//   - the form sets the session cookie on CookieDomain (SameSite=Lax, with a
//     SameSite=Strict companion) and returns to redirect_uri with state and
//     x_traceparent; its Cancel button returns with error=access_denied.
//   - GET /oauth2/end_session ends the session and clears the cookies when the
//     Strict companion arrives (a same-site navigation), else shows a
//     confirmation page first; then it goes to post_logout_redirect_uri if it
//     equals one of a client's exactly, else to /settings.
//   - /login without x_ref ignores return_to and ends on /settings.

// Client is an OAuth client of the fake project.
type Client struct {
	ID                     string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
}

// oauthState is guarded by Server.mu.
type oauthState struct {
	clients   map[string]Client
	passwords map[string]account
	pending   map[string]authorization // by x_ref
	forced    string                   // error code every authorize redirects with
	counts    OAuthCounts
}

type account struct{ password, userID string }

// authorization is an authorize request waiting for the sign-in form.
type authorization struct {
	redirectURI, state string
}

// OAuthCounts says what the browser side did.
type OAuthCounts struct {
	Authorize       int // authorize requests
	FormsShown      int // sign-in forms served
	SignIns         int // sessions created by the form
	SingleSignOns   int // authorize requests answered from an existing session
	SignOuts        int // sessions ended by end_session
	SignOutConfirms int // end_session confirmation pages shown
}

// The cookie Authgear sets alongside the session cookie with SameSite=Strict:
// it tells a same-site navigation from a cross-site one.
const strictCookie = "same_site_strict"

func (s *Server) oauthInit() {
	s.oauth = oauthState{clients: map[string]Client{}, passwords: map[string]account{}, pending: map[string]authorization{}}
}

// AddClient registers (or replaces) an OAuth client.
func (s *Server) AddClient(c Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauth.clients[c.ID] = c
}

// AddPassword lets login sign in as userID with password on the form.
func (s *Server) AddPassword(login, password, userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauth.passwords[login] = account{password, userID}
}

// ForceAuthorizeError makes every valid authorize request redirect back with
// error=code ("" restores).
func (s *Server) ForceAuthorizeError(code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauth.forced = code
}

// OAuthCounts returns what the browser side has done so far.
func (s *Server) OAuthCounts() OAuthCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.oauth.counts
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	if !s.ownHost(w, r) {
		return
	}
	q := r.URL.Query()
	s.mu.Lock()
	s.oauth.counts.Authorize++
	client, ok := s.oauth.clients[q.Get("client_id")]
	forced := s.oauth.forced
	s.mu.Unlock()
	redirectURI := q.Get("redirect_uri")
	switch {
	case !ok:
		authgearPage(w, http.StatusBadRequest, "Invalid client", "The client is not registered.")
		return
	case !slices.Contains(client.RedirectURIs, redirectURI):
		// Exact match only: path and query included.
		authgearPage(w, http.StatusBadRequest, "Error", "redirect URI is not allowed")
		return
	}
	state := q.Get("state")
	switch {
	case q.Get("response_type") != "none":
		back(w, r, redirectURI, url.Values{"error": {"unsupported_response_type"}, "error_description": {"only response_type=none in this fake"}}, state)
		return
	case !slices.Contains(strings.Fields(q.Get("scope")), "openid"):
		back(w, r, redirectURI, url.Values{"error": {"invalid_scope"}, "error_description": {"openid is required"}}, state)
		return
	case forced != "":
		back(w, r, redirectURI, url.Values{"error": {forced}, "error_description": {"forced by the test"}}, state)
		return
	}
	if s.sessionUser(r) != "" {
		s.mu.Lock()
		s.oauth.counts.SingleSignOns++
		s.mu.Unlock()
		back(w, r, redirectURI, nil, state)
		return
	}
	ref := randomHex(16)
	s.mu.Lock()
	s.oauth.pending[ref] = authorization{redirectURI, state}
	s.mu.Unlock()
	http.Redirect(w, r, "/login?x_ref="+ref, http.StatusFound)
}

// sessionUser is the user of the request's valid IdP session cookie, or "".
func (s *Server) sessionUser(r *http.Request) string {
	c, err := r.Cookie(s.CookiePrefix + "session")
	if err != nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	user, ok := s.sessions[sessionKey{Session, c.Value}]
	if !ok || s.disabled[user] {
		return ""
	}
	return user
}

// login serves the sign-in form (GET) and its submission (POST).
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if !s.ownHost(w, r) {
		return
	}
	ref := r.URL.Query().Get("x_ref")
	s.mu.Lock()
	pending, hasPending := s.oauth.pending[ref]
	s.mu.Unlock()
	switch r.Method {
	case http.MethodGet:
		s.showForm(w, http.StatusOK, ref, "")
		return
	case http.MethodPost:
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if r.PostFormValue("action") == "cancel" {
		s.forget(ref)
		if hasPending {
			back(w, r, pending.redirectURI, url.Values{"error": {"access_denied"}, "error_description": {"the user cancelled"}}, pending.state)
		} else {
			http.Redirect(w, r, "/settings", http.StatusFound)
		}
		return
	}
	s.mu.Lock()
	acct, ok := s.oauth.passwords[r.PostFormValue("login")]
	s.mu.Unlock()
	if !ok || acct.password != r.PostFormValue("password") {
		s.showForm(w, http.StatusUnauthorized, ref, "Incorrect login or password.")
		return
	}
	// <session id>.<32 characters>, as authgear-server's IdP session token.
	token := uuid() + "." + alnum(32)
	s.AddSession(Session, token, acct.userID)
	s.mu.Lock()
	s.oauth.counts.SignIns++
	s.mu.Unlock()
	s.setCookie(w, s.CookiePrefix+"session", token, http.SameSiteLaxMode, false)
	s.setCookie(w, s.CookiePrefix+strictCookie, "true", http.SameSiteStrictMode, false)
	s.forget(ref)
	if !hasPending {
		// Authgear ignores return_to: a bare /login ends on its own pages.
		http.Redirect(w, r, "/settings", http.StatusFound)
		return
	}
	back(w, r, pending.redirectURI, nil, pending.state)
}

func (s *Server) forget(ref string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.oauth.pending, ref)
}

func (s *Server) showForm(w http.ResponseWriter, status int, ref, problem string) {
	s.mu.Lock()
	s.oauth.counts.FormsShown++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	action := "/login"
	if ref != "" {
		action += "?x_ref=" + url.QueryEscape(ref)
	}
	_ = formTemplate.Execute(w, struct{ Action, Problem string }{action, problem})
}

var formTemplate = template.Must(template.New("form").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in - Fake Authgear</title></head>
<body><h1>Sign in</h1>{{if .Problem}}<p id="problem">{{.Problem}}</p>{{end}}
<form id="signin" method="post" action="{{.Action}}">
<label>Email <input id="login" name="login" autocomplete="username"></label>
<label>Password <input id="password" name="password" type="password" autocomplete="current-password"></label>
<button id="sign-in" name="action" value="sign_in" type="submit">Sign in</button>
<button id="cancel" name="action" value="cancel" type="submit">Cancel</button>
</form></body></html>
`))

// endSession serves /oauth2/end_session: GET from a same-site navigation (or
// the confirmation form's POST) ends the session.
func (s *Server) endSession(w http.ResponseWriter, r *http.Request) {
	if !s.ownHost(w, r) {
		return
	}
	var target, state string
	switch r.Method {
	case http.MethodGet:
		target, state = r.URL.Query().Get("post_logout_redirect_uri"), r.URL.Query().Get("state")
		if _, err := r.Cookie(s.CookiePrefix + strictCookie); err != nil {
			// Arrived from another site: ask first.
			s.mu.Lock()
			s.oauth.counts.SignOutConfirms++
			s.mu.Unlock()
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_ = confirmTemplate.Execute(w, struct{ Target, State string }{target, state})
			return
		}
	case http.MethodPost:
		target, state = r.PostFormValue("post_logout_redirect_uri"), r.PostFormValue("state")
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if c, err := r.Cookie(s.CookiePrefix + "session"); err == nil {
		s.RevokeSession(Session, c.Value)
	}
	s.mu.Lock()
	s.oauth.counts.SignOuts++
	registered := false
	for _, c := range s.oauth.clients {
		registered = registered || slices.Contains(c.PostLogoutRedirectURIs, target)
	}
	s.mu.Unlock()
	s.setCookie(w, s.CookiePrefix+"session", "", http.SameSiteLaxMode, true)
	s.setCookie(w, s.CookiePrefix+strictCookie, "", http.SameSiteStrictMode, true)
	u, err := url.Parse(target)
	if !registered || target == "" || err != nil {
		http.Redirect(w, r, "/settings", http.StatusFound)
		return
	}
	if state != "" {
		q := u.Query()
		q.Set("state", state)
		u.RawQuery = q.Encode()
	}
	http.Redirect(w, r, u.String(), http.StatusFound)
}

var confirmTemplate = template.Must(template.New("confirm").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign out - Fake Authgear</title></head>
<body><h1>Sign out?</h1>
<form id="signout" method="post" action="/oauth2/end_session">
<input type="hidden" name="post_logout_redirect_uri" value="{{.Target}}"><input type="hidden" name="state" value="{{.State}}">
<button id="confirm" type="submit">Sign out</button>
</form></body></html>
`))

// settings is where Authgear leaves a browser it has nowhere else to send.
func (s *Server) settings(w http.ResponseWriter, r *http.Request) {
	if !s.ownHost(w, r) {
		return
	}
	authgearPage(w, http.StatusOK, "Settings", "Fake Authgear's settings page.")
}

// ownHost answers 404 app not found for a request to another project's host.
func (s *Server) ownHost(w http.ResponseWriter, r *http.Request) bool {
	if projectHost(r) != s.PublicHost {
		http.Error(w, "app not found", http.StatusNotFound)
		return false
	}
	return true
}

func (s *Server) setCookie(w http.ResponseWriter, name, value string, sameSite http.SameSite, clear bool) {
	c := &http.Cookie{Name: name, Value: value, Path: "/", Domain: s.CookieDomain, HttpOnly: true, SameSite: sameSite}
	if clear {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

// back redirects to target (a registered redirect URI) with params, state
// when there is one, and x_traceparent, which Authgear's authorize adds.
func back(w http.ResponseWriter, r *http.Request, target string, params url.Values, state string) {
	u, err := url.Parse(target)
	if err != nil {
		http.Error(w, "bad registered URI", http.StatusInternalServerError)
		return
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	if state != "" {
		q.Set("state", state)
	}
	q.Set("x_traceparent", "00-"+randomHex(16)+"-"+randomHex(8)+"-01")
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} - Fake Authgear</title></head>
<body><h1>{{.Title}}</h1><p id="message">{{.Message}}</p></body></html>
`))

func authgearPage(w http.ResponseWriter, status int, title, message string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, struct{ Title, Message string }{title, message})
}

func uuid() string {
	h := randomHex(16)
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}

func alnum(n int) string {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return string(b)
}
