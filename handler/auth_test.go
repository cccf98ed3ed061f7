package handler

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/authgear/authgear-forwardauth/assertion"
	"github.com/authgear/authgear-forwardauth/cache"
	"github.com/authgear/authgear-forwardauth/internal/clocktest"
	"github.com/authgear/authgear-forwardauth/resolver"
	"github.com/authgear/authgear-forwardauth/resolver/resolvertest"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

const publicHost = "project.example"

var alice = resolver.Identity{
	UserID: "0b6cbbd4-7a45-4ab4-b2c3-6ea8b6e8a001", Verified: true, CanReauthenticate: true,
	Roles: []string{"admin", "editor"}, AMR: []string{"pwd", "otp"}, AuthenticatedAt: 1764000000,
}

var bob = resolver.Identity{UserID: "b0b"}

// The fake's credentials, in the shapes Authgear issues.
var (
	aliceToken  = resolvertest.Token("alice")
	aliceIDP    = resolvertest.SessionToken("alice")
	aliceApp    = resolvertest.Token("aliceApp")
	aliceAccess = resolvertest.Token("aliceAccess")
	bobToken    = resolvertest.Token("bob")
	bobIDP      = resolvertest.SessionToken("bob")
	anonToken   = resolvertest.Token("anon")
	// Well shaped, but unknown to Authgear.
	nopeToken   = resolvertest.Token("nope")
	nopeSession = resolvertest.SessionToken("nope")
)

// anon is an Authgear anonymous user: refused (403) unless a route allows them.
var anon = resolver.Identity{UserID: "an0n", Anonymous: true}

type stack struct {
	authgear *resolvertest.Server
	handler  http.Handler
	reg      *prometheus.Registry
	revoker  cache.Revoker
}

type stackOptions struct {
	cookiePrefix string
	timeout      time.Duration
	redis        Pinger
	trusted      []netip.Prefix
	preflight    bool
	login        LoginConfig
	jwt          JWTMode
	shapes       CredentialShapes
	clock        *clocktest.Clock // nil: the real time
	resolverWrap func(cache.Resolver, *prometheus.Registry) cache.Resolver
	setup        func(*resolvertest.Server) // before the service starts
	assertion    *assertion.Issuer
	tracer       trace.Tracer
}

// newStack is the service as main wires it, in front of a fake Authgear that
// knows alice (bearer aliceToken, cookie session aliceIDP) and bob.
func newStack(t testing.TB, opts stackOptions) *stack {
	t.Helper()
	ag := resolvertest.NewServer(publicHost)
	t.Cleanup(ag.Close)
	ag.CookiePrefix = opts.cookiePrefix
	ag.AddUser(alice)
	ag.AddUser(bob)
	ag.AddSession(resolvertest.Bearer, aliceToken, alice.UserID)
	ag.AddSession(resolvertest.Session, aliceIDP, alice.UserID)
	ag.AddSession(resolvertest.AppSession, aliceApp, alice.UserID)
	ag.AddSession(resolvertest.AppAccessToken, aliceAccess, alice.UserID)
	ag.AddSession(resolvertest.Bearer, bobToken, bob.UserID)
	ag.AddSession(resolvertest.Session, bobIDP, bob.UserID)
	ag.AddUser(anon)
	ag.AddSession(resolvertest.Bearer, anonToken, anon.UserID)

	if opts.setup != nil {
		opts.setup(ag)
	}
	timeout := opts.timeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	reg := prometheus.NewRegistry()
	client := resolver.NewClient(resolver.ClientConfig{
		Endpoint: ag.Endpoint(), ResolverURL: ag.ResolverURL(), CookiePrefix: opts.cookiePrefix, Timeout: timeout,
		PropagateTrace: opts.tracer != nil,
	}, resolver.NewHTTPClient(timeout), discard, reg)
	keyer := cache.NewKeyer([]byte("secret"))
	var r cache.Resolver = client
	if opts.resolverWrap != nil {
		r = opts.resolverWrap(r, reg)
	}
	var clock cache.Clock // an untyped nil unless the test has a clock
	var now func() time.Time
	if opts.clock != nil {
		clock, now = opts.clock, opts.clock.Now
	}
	c := cache.New(cache.Config{TTL: time.Minute, NegativeTTL: 5 * time.Second, FetchTimeout: timeout + time.Second, Clock: clock, Tracer: opts.tracer},
		keyer, cache.NewLocal(1000, time.Minute, clock), nil, r, discard,
		prometheus.WrapRegistererWith(prometheus.Labels{"cache": "resolver"}, reg))
	revoker := cache.Revoker{Main: c}
	var jwtCfg JWTConfig
	if opts.jwt != JWTOff {
		v, err := resolver.NewJWTVerifier(t.Context(), resolver.JWTConfig{Endpoint: ag.Endpoint(), DiscoveryURL: ag.DiscoveryURL(), Clock: now},
			resolver.NewHTTPClient(timeout), discard)
		if err != nil {
			t.Fatal(err)
		}
		if opts.setup == nil {
			// Tests of the JWT path want its keys; the fallback has its own test.
			for deadline := time.Now().Add(10 * time.Second); !v.Ready(); time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the JWT verifier never got the fake's keys")
				}
			}
		}
		jc := cache.NewVerified(1<<20, cache.Config{TTL: time.Minute, NegativeTTL: 5 * time.Second, FetchTimeout: timeout, Clock: clock},
			resolver.JWTResolver{V: v}, prometheus.WrapRegistererWith(prometheus.Labels{"cache": "jwt"}, reg))
		deny := cache.NewDenyList(time.Hour, nil, clock, discard)
		jwtCfg = JWTConfig{Mode: opts.jwt, Verified: jc, Deny: deny}
		revoker = cache.Revoker{Main: c, JWT: jc, Deny: deny}
	}
	cfg := Config{Auth: AuthConfig{CookiePrefix: opts.cookiePrefix, TrustedProxies: opts.trusted, AllowPreflight: opts.preflight, Login: opts.login, JWT: jwtCfg, Shapes: opts.shapes}}
	var purger Purger = revoker
	if opts.assertion != nil {
		cfg.Auth.Assertion, cfg.JWKS = opts.assertion, opts.assertion.JWKS()
		purger = assertion.DroppingPurger{Next: revoker, Tokens: opts.assertion}
	}
	h := New(cfg, Deps{Decider: c, Purger: purger, Redis: opts.redis, Logger: discard, Registry: reg, Tracer: opts.tracer})
	return &stack{authgear: ag, handler: h, reg: reg, revoker: revoker}
}

func (s *stack) do(method, target string, header http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	s.handler.ServeHTTP(w, r)
	return w
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestResolverOutcomes(t *testing.T) {
	const (
		challenge    = `Bearer`
		invalidToken = `Bearer error="invalid_token"`
	)
	tests := []struct {
		name      string
		header    http.Header
		setup     func(ag *resolvertest.Server)
		status    int
		challenge string
		calls     int64
	}{
		{name: "valid bearer", header: hdr("Authorization", "Bearer "+aliceToken), status: 200, calls: 1},
		{name: "bearer scheme in any case", header: hdr("Authorization", "bEaReR "+aliceToken), status: 200, calls: 1},
		{name: "valid session cookie", header: hdr("Cookie", "session="+aliceIDP), status: 200, calls: 1},
		{name: "valid app_session cookie", header: hdr("Cookie", "app_session="+aliceApp), status: 200, calls: 1},
		{name: "valid app_access_token cookie", header: hdr("Cookie", "app_access_token="+aliceAccess), status: 200, calls: 1},
		{name: "no credential: no resolver call", header: hdr(), status: 401, challenge: challenge, calls: 0},
		{name: "basic auth is no credential", header: hdr("Authorization", "Basic dXNlcjpwYXNz"), status: 401, challenge: challenge, calls: 0},
		{name: "invalid session cookie (valid false)", header: hdr("Cookie", "session="+nopeSession), status: 401, challenge: challenge, calls: 1},
		{name: "invalid bearer (no headers)", header: hdr("Authorization", "Bearer "+nopeToken), status: 401, challenge: invalidToken, calls: 1},
		{name: "invalid app_session (no headers)", header: hdr("Cookie", "app_session="+nopeToken), status: 401, challenge: challenge, calls: 1},
		{
			name: "disabled user's bearer (valid false)", header: hdr("Authorization", "Bearer "+aliceToken),
			setup: func(ag *resolvertest.Server) { ag.DisableUser(alice.UserID, true) }, status: 401, challenge: invalidToken, calls: 1,
		},
		{
			name: "disabled user's cookie (valid false)", header: hdr("Cookie", "session="+aliceIDP),
			setup: func(ag *resolvertest.Server) { ag.DisableUser(alice.UserID, true) }, status: 401, challenge: challenge, calls: 1,
		},
		{
			name: "revoked session cookie", header: hdr("Cookie", "session="+aliceIDP),
			setup: func(ag *resolvertest.Server) { ag.RevokeSession(resolvertest.Session, aliceIDP) }, status: 401, challenge: challenge, calls: 1,
		},
		{
			name: "resolver 500", header: hdr("Authorization", "Bearer "+aliceToken),
			setup: func(ag *resolvertest.Server) { ag.SetFailure(resolvertest.Status500) }, status: 503, calls: 1,
		},
		{
			name: "resolver drops the connection", header: hdr("Authorization", "Bearer "+aliceToken),
			setup: func(ag *resolvertest.Server) { ag.SetFailure(resolvertest.Drop) }, status: 503, calls: 1,
		},
		{
			name: "resolver for another host (404 app not found)", header: hdr("Authorization", "Bearer "+aliceToken),
			setup: func(ag *resolvertest.Server) { ag.PublicHost = "other.example" }, status: 503, calls: 1,
		},
		{
			name: "valid without a user id", header: hdr("Authorization", "Bearer "+aliceToken),
			setup: func(ag *resolvertest.Server) {
				ag.Override(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("X-Authgear-Session-Valid", "true")
				}))
			}, status: 503, calls: 1,
		},
		{
			name: "unknown validity value", header: hdr("Authorization", "Bearer "+aliceToken),
			setup: func(ag *resolvertest.Server) {
				ag.Override(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("X-Authgear-Session-Valid", "yes")
				}))
			}, status: 503, calls: 1,
		},
		{
			name: "control bytes in an identity value are not echoed", header: hdr("Authorization", "Bearer "+aliceToken),
			setup: func(ag *resolvertest.Server) {
				ag.Override(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("X-Authgear-Session-Valid", "true")
					w.Header().Set("X-Authgear-User-Id", "u\x01Set-Cookie: x=y")
				}))
			}, status: 503, calls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t, stackOptions{})
			if tt.setup != nil {
				tt.setup(s.authgear)
			}
			w := s.do("GET", "/auth", tt.header)
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d", w.Code, tt.status)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.challenge)
			}
			if got := s.authgear.Calls(); got != tt.calls {
				t.Errorf("resolver calls = %d, want %d", got, tt.calls)
			}
			if tt.status != 200 && w.Header().Get("X-Authgear-User-Id") != "" {
				t.Error("identity header on a refusal")
			}
		})
	}
}

func TestAllowSetsEveryIdentityHeader(t *testing.T) {
	s := newStack(t, stackOptions{})
	w := s.do("GET", "/auth", hdr("Authorization", "Bearer "+aliceToken))
	want := map[string]string{
		"X-Authgear-Session-Valid":            "true",
		"X-Authgear-User-Id":                  alice.UserID,
		"X-Authgear-User-Anonymous":           "false",
		"X-Authgear-User-Verified":            "true",
		"X-Authgear-User-Can-Reauthenticate":  "true",
		"X-Authgear-User-Roles":               "admin,editor",
		"X-Authgear-Session-Amr":              "pwd otp",
		"X-Authgear-Session-Authenticated-At": "1764000000",
	}
	for k, v := range want {
		if got := w.Header().Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if w.Body.Len() != 0 {
		t.Errorf("body = %q, want empty", w.Body.String())
	}

	// bob has no roles, no AMR and no authentication time: the headers are
	// still there, empty, so a gateway copying them overwrites a client's.
	w = s.do("GET", "/auth", hdr("Authorization", "Bearer "+bobToken))
	for _, k := range resolver.IdentityHeaders() {
		if _, ok := w.Header()[k]; !ok {
			t.Errorf("%s missing for a user without it", k)
		}
	}
	if got := w.Header().Get("X-Authgear-User-Roles"); got != "" {
		t.Errorf("roles = %q, want empty", got)
	}
	if got := w.Header().Get("X-Authgear-User-Anonymous"); got != "false" {
		t.Errorf("anonymous = %q", got)
	}
}

func TestCredentialPrecedence(t *testing.T) {
	tests := []struct {
		name   string
		header http.Header
		user   string
	}{
		{"valid bearer beats a garbage cookie", hdr("Authorization", "Bearer "+aliceToken, "Cookie", "session=garbage"), alice.UserID},
		{"garbage bearer falls back to a valid cookie", hdr("Authorization", "Bearer garbage", "Cookie", "session="+bobIDP), bob.UserID},
		{"bearer before cookies", hdr("Authorization", "Bearer "+bobToken, "Cookie", "session="+aliceIDP), bob.UserID},
		{"app_session before session", hdr("Cookie", "session="+bobIDP+"; app_session="+aliceApp), alice.UserID},
		{"first cookie of a name wins", hdr("Cookie", "session="+bobIDP+"; session="+aliceIDP), bob.UserID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t, stackOptions{})
			w := s.do("GET", "/auth", tt.header)
			if w.Code != 200 || w.Header().Get("X-Authgear-User-Id") != tt.user {
				t.Fatalf("got %d user %q, want 200 user %q", w.Code, w.Header().Get("X-Authgear-User-Id"), tt.user)
			}
		})
	}
}

func TestOnlyAuthgearCredentialsAreForwarded(t *testing.T) {
	s := newStack(t, stackOptions{})
	h := hdr(
		"Cookie", "theme=dark; session="+aliceIDP+"; csrf=abc",
		"Cookie", "app_session="+aliceApp+"; tracking=1",
		"Authorization", "Bearer "+aliceToken,
		"X-Forwarded-For", "203.0.113.7, 10.0.0.1",
		"User-Agent", "Mozilla/5.0 test",
		"X-Api-Key", "app-secret",
	)
	if w := s.do("GET", "/auth", h); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	got := s.authgear.LastRequest()
	if c := got.Header.Values("Cookie"); len(c) != 1 || c[0] != "app_session="+aliceApp+"; session="+aliceIDP {
		t.Errorf("Cookie sent to Authgear = %q, want only Authgear's cookies", c)
	}
	if a := got.Header.Get("Authorization"); a != "Bearer "+aliceToken {
		t.Errorf("Authorization = %q", a)
	}
	if v := got.Header.Get("X-Forwarded-For"); v != "203.0.113.7, 10.0.0.1" {
		t.Errorf("X-Forwarded-For = %q", v)
	}
	if v := got.Header.Get("User-Agent"); v != "Mozilla/5.0 test" {
		t.Errorf("User-Agent = %q", v)
	}
	if v := got.Header.Get("X-Api-Key"); v != "" {
		t.Errorf("an app header reached Authgear: X-Api-Key = %q", v)
	}
}

func TestInternalResolverURLStillSendsThePublicHost(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.do("GET", "/auth", hdr("Authorization", "Bearer "+aliceToken))
	got := s.authgear.LastRequest()
	if got.Host != publicHost {
		t.Errorf("Host = %q, want %q", got.Host, publicHost)
	}
	if v := got.Header.Get("X-Forwarded-Host"); v != publicHost {
		t.Errorf("X-Forwarded-Host = %q", v)
	}
	if v := got.Header.Get("X-Forwarded-Proto"); v != "https" {
		t.Errorf("X-Forwarded-Proto = %q", v)
	}
	if got.Method != http.MethodGet || got.URL.Path != "/_resolver/resolve" {
		t.Errorf("called %s %s", got.Method, got.URL.Path)
	}
}

func TestCookiePrefix(t *testing.T) {
	s := newStack(t, stackOptions{cookiePrefix: "myapp_"})
	if w := s.do("GET", "/auth", hdr("Cookie", "session="+aliceIDP)); w.Code != 401 {
		t.Fatalf("unprefixed cookie: status %d, want 401", w.Code)
	}
	if w := s.do("GET", "/auth", hdr("Cookie", "myapp_session="+aliceIDP)); w.Code != 200 {
		t.Fatalf("prefixed cookie: status %d, want 200", w.Code)
	}
	if c := s.authgear.LastRequest().Header.Get("Cookie"); c != "myapp_session="+aliceIDP {
		t.Errorf("Cookie sent = %q", c)
	}
}

func TestMalformedCredentialsAre401WithoutAResolverCall(t *testing.T) {
	tests := []struct {
		name   string
		header http.Header
	}{
		{"two Authorization headers", hdr("Authorization", "Bearer "+aliceToken, "Authorization", "Bearer "+bobToken)},
		{"Bearer without a token", hdr("Authorization", "Bearer")},
		{"Bearer with blanks only", hdr("Authorization", "Bearer    ")},
		{"token with a space", hdr("Authorization", "Bearer alice token")},
		{"token with a quote", hdr("Authorization", `Bearer "alice"`)},
		{"non-UTF-8 token", hdr("Authorization", "Bearer \xff\xfe")},
		{"huge token", hdr("Authorization", "Bearer "+strings.Repeat("a", 20000))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t, stackOptions{})
			w := s.do("GET", "/auth", tt.header)
			if w.Code != 401 || w.Header().Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
				t.Fatalf("got %d %q, want 401 invalid_token", w.Code, w.Header().Get("WWW-Authenticate"))
			}
			if s.authgear.Calls() != 0 {
				t.Error("a malformed credential was sent to Authgear")
			}
		})
	}
	t.Run("cookies with invalid bytes are ignored", func(t *testing.T) {
		s := newStack(t, stackOptions{})
		w := s.do("GET", "/auth", hdr("Cookie", "session=ali\\ce; app_session=\x01x; other=1"))
		if w.Code != 401 || s.authgear.Calls() != 0 {
			t.Fatalf("got %d with %d calls, want 401 with none", w.Code, s.authgear.Calls())
		}
	})
	t.Run("thousands of cookies", func(t *testing.T) {
		s := newStack(t, stackOptions{})
		var b strings.Builder
		for i := range 3000 {
			b.WriteString("c")
			b.WriteString(strings.Repeat("x", i%7))
			b.WriteString("=v; ")
		}
		b.WriteString("session=" + aliceIDP)
		if w := s.do("GET", "/auth", hdr("Cookie", b.String())); w.Code != 200 {
			t.Fatalf("status %d, want 200", w.Code)
		}
	})
}

func TestAuthAcceptsAnyMethodAndSubPath(t *testing.T) {
	s := newStack(t, stackOptions{})
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
		for _, p := range []string{"/auth", "/auth/", "/auth/api/v1/things"} {
			if w := s.do(m, p, hdr("Authorization", "Bearer "+aliceToken)); w.Code != 200 {
				t.Errorf("%s %s: status %d", m, p, w.Code)
			}
		}
	}
}

func TestCacheHitMakesNoResolverCall(t *testing.T) {
	s := newStack(t, stackOptions{})
	for range 5 {
		s.do("GET", "/auth", hdr("Authorization", "Bearer "+aliceToken))
		s.do("GET", "/auth", hdr("Authorization", "Bearer "+nopeToken))
	}
	if n := s.authgear.Calls(); n != 2 {
		t.Fatalf("resolver calls = %d, want 2 (one allow, one deny)", n)
	}
}

func TestConcurrentRequestsWithOneNewTokenMakeOneCall(t *testing.T) {
	s := newStack(t, stackOptions{})
	var wg sync.WaitGroup
	codes := make(chan int, 200)
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- s.do("GET", "/auth", hdr("Authorization", "Bearer "+aliceToken)).Code
		}()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Fatalf("status %d", c)
		}
	}
	if n := s.authgear.Calls(); n != 1 {
		t.Fatalf("resolver calls = %d, want 1", n)
	}
}

func TestUnavailableAuthgearIs503AndNotCached(t *testing.T) {
	t.Run("timeout", func(t *testing.T) {
		s := newStack(t, stackOptions{timeout: 100 * time.Millisecond})
		s.authgear.SetFailure(resolvertest.Hang)
		if w := s.do("GET", "/auth", hdr("Authorization", "Bearer "+aliceToken)); w.Code != 503 {
			t.Fatalf("status %d, want 503", w.Code)
		}
		s.authgear.SetFailure(resolvertest.OK)
		if w := s.do("GET", "/auth", hdr("Authorization", "Bearer "+aliceToken)); w.Code != 200 {
			t.Fatalf("after recovery: status %d, want 200 (the failure was cached)", w.Code)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		s := newStack(t, stackOptions{})
		s.authgear.Close()
		if w := s.do("GET", "/auth", hdr("Authorization", "Bearer "+aliceToken)); w.Code != 503 {
			t.Fatalf("status %d, want 503", w.Code)
		}
	})
	t.Run("500 then recovery", func(t *testing.T) {
		s := newStack(t, stackOptions{})
		s.authgear.SetFailure(resolvertest.Status500)
		if w := s.do("GET", "/auth", hdr("Cookie", "session="+aliceIDP)); w.Code != 503 {
			t.Fatalf("status %d, want 503", w.Code)
		}
		s.authgear.SetFailure(resolvertest.OK)
		if w := s.do("GET", "/auth", hdr("Cookie", "session="+aliceIDP)); w.Code != 200 {
			t.Fatalf("after recovery: status %d, want 200", w.Code)
		}
		if n := s.authgear.Calls(); n != 2 {
			t.Fatalf("calls = %d, want 2", n)
		}
	})
}
