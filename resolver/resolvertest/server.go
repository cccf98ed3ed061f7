// Package resolvertest is a faithful fake of Authgear for tests: its Resolver
// Endpoint answers as authgear-server does (see shared/authgear-facts.md),
// always 200 with the verdict in X-Authgear-Session-Valid, and it counts its
// calls so tests can assert how many were made.
package resolvertest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authgear/authgear-forwardauth/resolver"
)

// Kind is where a credential is carried.
type Kind int

const (
	Bearer         Kind = iota // Authorization: Bearer
	AppSession                 // cookie app_session
	AppAccessToken             // cookie app_access_token
	Session                    // cookie session (the IdP session)
)

// Failure makes the resolver misbehave.
type Failure int

const (
	OK        Failure = iota
	Status500         // internal error: 500, no headers
	Hang              // never answers until the request is cancelled or the server closed
	Drop              // closes the connection without an answer
)

// clearSessionCookie is what Authgear sends when a session cookie is no good.
const clearSessionCookie = "session=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax"

// Server is a fake Authgear project.
type Server struct {
	*httptest.Server
	// PublicHost is the project's host; a resolve for any other is 404.
	PublicHost   string
	CookiePrefix string
	// CookieDomain is the Domain of the session cookie the sign-in form sets
	// (Authgear's http.cookie_domain, the apps' parent domain); "" host-only.
	CookieDomain string

	calls            atomic.Int64
	jwksFetches      atomic.Int64
	discoveryFetches atomic.Int64

	mu       sync.Mutex
	users    map[string]resolver.Identity
	disabled map[string]bool
	sessions map[sessionKey]string // credential -> user id
	failure  Failure
	override http.Handler
	last     *http.Request
	traces   []string // traceparent headers received, the last maxTraces
	release  chan struct{}
	jwt      jwtState   // signing keys and revoked grants, see jwt.go
	oauth    oauthState // clients, passwords, sign-ins in progress, see oauth.go
}

type sessionKey struct {
	kind  Kind
	value string
}

// NewServer starts a fake Authgear whose public host is publicHost (the host
// of AUTHGEAR_ENDPOINT in tests). Close it when done.
func NewServer(publicHost string) *Server {
	s := &Server{
		PublicHost: publicHost,
		users:      map[string]resolver.Identity{},
		disabled:   map[string]bool{},
		sessions:   map[sessionKey]string{},
		release:    make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/_resolver/resolve", s.resolve)
	mux.HandleFunc("/resolve", s.resolve)
	mux.HandleFunc("/.well-known/openid-configuration", s.discovery)
	mux.HandleFunc("/oauth2/jwks", s.jwks)
	mux.HandleFunc("/oauth2/authorize", s.authorize)
	mux.HandleFunc("/login", s.login)
	mux.HandleFunc("/oauth2/end_session", s.endSession)
	mux.HandleFunc("/settings", s.settings)
	s.oauthInit()
	s.Server = httptest.NewServer(mux)
	return s
}

// Close releases hanging requests and stops the server.
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.release:
	default:
		close(s.release)
	}
	s.mu.Unlock()
	s.Server.CloseClientConnections()
	s.Server.Close()
}

// Endpoint is the URL to call this server by its public host: the scheme and
// address of the test server with PublicHost as the name is not resolvable,
// so tests use ResolverURL for the address and Endpoint for the identity.
func (s *Server) Endpoint() *url.URL {
	return &url.URL{Scheme: "https", Host: s.PublicHost}
}

// ResolverURL is the internal address of the resolver.
func (s *Server) ResolverURL() *url.URL {
	u, _ := url.Parse(s.URL + "/_resolver/resolve")
	return u
}

// AddUser registers (or replaces) a user.
func (s *Server) AddUser(id resolver.Identity) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[id.UserID] = id
}

// AddSession makes value, carried as kind, a valid credential of userID. It
// panics when value has a shape Authgear never issues for kind (see Token and
// SessionToken), so that no test leans on a credential Authgear cannot have.
func (s *Server) AddSession(kind Kind, value, userID string) {
	var sh resolver.Shapes
	ok := false
	switch kind {
	case Bearer, AppAccessToken:
		ok = sh.AccessToken(value)
	case AppSession:
		ok = resolver.IsOpaqueToken(value)
	case Session:
		ok = resolver.IsSessionToken(value)
	}
	if !ok {
		panic(fmt.Sprintf("resolvertest: %q is not a credential Authgear issues for kind %d", value, kind))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions[sessionKey{kind, value}] = userID
}

// RevokeSession deletes a session: a cookie then resolves to valid false, a
// Bearer token to no headers.
func (s *Server) RevokeSession(kind Kind, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, sessionKey{kind, value})
}

// DisableUser disables the account: its sessions resolve to valid false.
func (s *Server) DisableUser(userID string, disabled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.disabled[userID] = disabled
}

// SetFailure makes every following resolve fail as f (OK restores).
func (s *Server) SetFailure(f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failure = f
}

// Override replaces the resolver's answer with h (nil restores), for answers
// Authgear would never give.
func (s *Server) Override(h http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.override = h
}

// Calls is how many requests reached the resolver.
func (s *Server) Calls() int64 { return s.calls.Load() }

// LastRequest is a copy of the last request the resolver received (nil if none).
func (s *Server) LastRequest() *http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// maxTraces bounds what Traceparents remembers (the fake also serves loads).
const maxTraces = 1024

// Traceparents is the W3C traceparent header of the resolves that carried
// one, in order (the last 1024), which Authgear's tracing would continue.
func (s *Server) Traceparents() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.traces...)
}

func (s *Server) resolve(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	s.mu.Lock()
	s.last = r.Clone(r.Context())
	if tp := r.Header.Values("Traceparent"); len(tp) > 0 {
		if len(s.traces) == maxTraces {
			s.traces = append(s.traces[:0], s.traces[1:]...)
		}
		s.traces = append(s.traces, strings.Join(tp, ", "))
	}
	failure, override, release := s.failure, s.override, s.release
	s.mu.Unlock()

	switch failure {
	case Status500:
		http.Error(w, "internal server error", http.StatusInternalServerError)
		return
	case Hang:
		select {
		case <-r.Context().Done():
		case <-release:
		case <-time.After(time.Minute):
		}
		return
	case Drop:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
			}
		}
		return
	}
	if override != nil {
		override.ServeHTTP(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if projectHost(r) != s.PublicHost {
		http.Error(w, "app not found", http.StatusNotFound)
		return
	}
	s.answer(w, r)
}

// projectHost picks the project as Authgear does behind a trusted proxy.
func projectHost(r *http.Request) string {
	if h := r.Header.Get("X-Forwarded-Host"); h != "" {
		return h
	}
	if h := r.Header.Get("X-Original-Host"); h != "" {
		return h
	}
	return r.Host
}

// answer tries the credentials in Authgear's order; the first that resolves wins.
func (s *Server) answer(w http.ResponseWriter, r *http.Request) {
	type candidate struct {
		kind  Kind
		value string
	}
	var cands []candidate
	if scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") && token != "" {
		cands = append(cands, candidate{Bearer, token})
	}
	sessionCookieSent := false
	for _, c := range []struct {
		kind Kind
		name string
	}{{AppSession, "app_session"}, {AppAccessToken, "app_access_token"}, {Session, "session"}} {
		if ck, err := r.Cookie(s.CookiePrefix + c.name); err == nil && ck.Value != "" {
			cands = append(cands, candidate{c.kind, ck.Value})
			if c.kind == Session {
				sessionCookieSent = true
			}
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range cands {
		userID, ok := s.sessions[sessionKey(c)]
		if !ok && c.kind == Bearer {
			userID, ok = s.jwtUser(c.value)
		}
		if !ok {
			continue
		}
		if s.disabled[userID] {
			w.Header().Set(resolver.HeaderSessionValid, "false")
			if c.kind == Session {
				w.Header().Add("Set-Cookie", clearSessionCookie)
			}
			return
		}
		writeIdentity(w.Header(), s.users[userID])
		return
	}
	if sessionCookieSent {
		w.Header().Set(resolver.HeaderSessionValid, "false")
		w.Header().Add("Set-Cookie", clearSessionCookie)
	}
	// Otherwise no x-authgear headers at all: no credential, or a bad token.
}

func writeIdentity(h http.Header, id resolver.Identity) {
	h.Set(resolver.HeaderSessionValid, "true")
	h.Set(resolver.HeaderUserID, id.UserID)
	h.Set(resolver.HeaderUserAnonymous, strconv.FormatBool(id.Anonymous))
	h.Set(resolver.HeaderUserVerified, strconv.FormatBool(id.Verified))
	h.Set(resolver.HeaderUserCanReauth, strconv.FormatBool(id.CanReauthenticate))
	if len(id.Roles) > 0 {
		h.Set(resolver.HeaderUserRoles, strings.Join(id.Roles, ","))
	}
	h.Set(resolver.HeaderSessionAMR, strings.Join(id.AMR, " "))
	if id.AuthenticatedAt > 0 {
		h.Set(resolver.HeaderSessionAuthTime, strconv.FormatInt(id.AuthenticatedAt, 10))
	}
}

// Token is a well-shaped opaque token (an access token or app_session: 32
// characters of [A-Za-z0-9]) made from seed: up to 16 of its letters and
// digits, for reading, then hex digits of its SHA-256, so that different
// seeds give different tokens.
func Token(seed string) string {
	b := make([]byte, 0, resolver.OpaqueTokenLen)
	for i := 0; i < len(seed) && len(b) < resolver.OpaqueTokenLen/2; i++ {
		if c := seed[i]; c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b = append(b, c)
		}
	}
	sum := sha256.Sum256([]byte(seed))
	return string(b) + hex.EncodeToString(sum[:])[:resolver.OpaqueTokenLen-len(b)]
}

// SessionToken is a well-shaped IdP session cookie made from seed:
// "<uuid>.<32 characters>", the UUID derived from seed.
func SessionToken(seed string) string {
	sum := sha256.Sum256([]byte(seed))
	h := hex.EncodeToString(sum[:16])
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32] + "." + Token(seed)
}
