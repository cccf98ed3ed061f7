package handler

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgear/authgear-forwardauth/assertion"
	"github.com/authgear/authgear-forwardauth/resolver"
)

// httptest's peer, and what the gateway tells about the original request.
var testPeer = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}

func newTestIssuer(t testing.TB) *assertion.Issuer {
	t.Helper()
	set, err := assertion.GenerateSet(nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := assertion.ParseKeys(set)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := assertion.New(t.Context(), assertion.Config{Keys: keys, TTL: 5 * time.Minute}, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

// forwardedOriginal is what Traefik and Caddy send about the original request.
func forwardedOriginal(host string) []string {
	return []string{"X-Forwarded-Method", "GET", "X-Forwarded-Proto", "https", "X-Forwarded-Host", host, "X-Forwarded-Uri", "/page?x=1"}
}

// checkAssertion verifies tok with go-jose against the JWK Set the service
// serves, and returns its claims.
func checkAssertion(t *testing.T, s *stack, tok, aud string) (josejwt.Claims, map[string]any) {
	t.Helper()
	w := s.do("GET", "/.well-known/jwks.json", nil)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(w.Body.Bytes(), &set); err != nil || w.Code != 200 {
		t.Fatalf("JWKS: %d %v", w.Code, err)
	}
	parsed, err := josejwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("not an ES256 JWT: %v", err)
	}
	keys := set.Key(parsed.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q not served", parsed.Headers[0].KeyID)
	}
	var std josejwt.Claims
	var all map[string]any
	if err := parsed.Claims(keys[0].Key, &std, &all); err != nil {
		t.Fatalf("signature: %v", err)
	}
	if err := std.Validate(josejwt.Expected{Issuer: assertion.DefaultIssuer, AnyAudience: josejwt.Audience{aud}, Time: time.Now()}); err != nil {
		t.Fatalf("claims: %v", err)
	}
	return std, all
}

func TestAssertionAudience(t *testing.T) {
	s := newStack(t, stackOptions{assertion: newTestIssuer(t), trusted: testPeer})
	for _, tc := range []struct {
		name   string
		header []string
		aud    string // "" : the header is present and empty
	}{
		{"Traefik/Caddy: X-Forwarded-Host", forwardedOriginal("App.Example.com:8443"), "app.example.com:8443"},
		{"nginx: the host of X-Original-URL", []string{"X-Original-Method", "GET", "X-Original-URI", "/p", "X-Original-URL", "https://app.example.com/p"}, "app.example.com"},
		{"ingress-nginx: X-Original-URL alone", []string{"X-Original-Method", "GET", "X-Original-URL", "http://app.example.com/"}, "app.example.com"},
		{"nginx: X-Original-URI and X-Forwarded-Host", []string{"X-Original-URI", "/p", "X-Forwarded-Host", "app.example.com"}, "app.example.com"},
		{"no original request", nil, ""},
		{"a host but no URI", []string{"X-Forwarded-Host", "app.example.com"}, ""},
		{"both conventions: ambiguous", append(forwardedOriginal("a.example"), "X-Original-URL", "https://b.example/"), ""},
		{"userinfo in the original URL", []string{"X-Original-URL", "https://user@app.example.com/"}, ""},
		{"a list of hosts", forwardedOriginal("a.example, b.example"), ""},
		{"a space in the original host", []string{"X-Original-URL", "https://app.exa mple.com/"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := s.do("GET", "/auth", hdr(append([]string{"Authorization", "Bearer " + aliceToken}, tc.header...)...))
			if w.Code != 200 {
				t.Fatalf("status %d", w.Code)
			}
			got, ok := w.Result().Header[HeaderJWTAssertion]
			if !ok || len(got) != 1 {
				t.Fatalf("%s: %q, want one value", HeaderJWTAssertion, got)
			}
			if tc.aud == "" {
				if got[0] != "" {
					t.Fatalf("a token without a trusted original host: %q", got[0])
				}
				return
			}
			std, all := checkAssertion(t, s, got[0], tc.aud)
			if std.Subject != alice.UserID || all[assertion.ClaimRoles] == nil {
				t.Errorf("claims %v", all)
			}
			if w.Header().Get(resolver.HeaderUserID) != alice.UserID {
				t.Errorf("identity headers missing")
			}
		})
	}
}

func TestAssertionNeedsATrustedGateway(t *testing.T) {
	s := newStack(t, stackOptions{assertion: newTestIssuer(t)}) // trusts nobody
	w := s.do("GET", "/auth", hdr(append([]string{"Authorization", "Bearer " + aliceToken}, forwardedOriginal("app.example.com")...)...))
	if w.Code != 200 || w.Header().Get(HeaderJWTAssertion) != "" {
		t.Fatalf("status %d, assertion %q: want 200 and none", w.Code, w.Header().Get(HeaderJWTAssertion))
	}
}

func TestAssertionOptionalAndRefusals(t *testing.T) {
	s := newStack(t, stackOptions{assertion: newTestIssuer(t), trusted: testPeer})
	orig := forwardedOriginal("app.example.com")
	// optional, nobody signed in: every identity header empty, this one too.
	w := s.do("GET", "/auth?optional", hdr(orig...))
	if v, ok := w.Result().Header[HeaderJWTAssertion]; w.Code != 200 || !ok || v[0] != "" {
		t.Errorf("optional anonymous: %d %q", w.Code, v)
	}
	// optional, signed in: a token.
	w = s.do("GET", "/auth?optional", hdr(append([]string{"Authorization", "Bearer " + aliceToken}, orig...)...))
	if w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	checkAssertion(t, s, w.Header().Get(HeaderJWTAssertion), "app.example.com")
	// Refusals carry none.
	for _, tc := range []struct {
		target string
		header []string
		status int
	}{
		{"/auth", nil, 401},
		{"/auth", []string{"Authorization", "Bearer " + nopeToken}, 401},
		{"/auth?roles=root", []string{"Authorization", "Bearer " + aliceToken}, 403},
		{"/auth", []string{"Authorization", "Bearer " + anonToken}, 403},
	} {
		w := s.do("GET", tc.target, hdr(append(tc.header, orig...)...))
		if w.Code != tc.status {
			t.Errorf("%s %v: status %d, want %d", tc.target, tc.header, w.Code, tc.status)
		}
		if _, ok := w.Result().Header[HeaderJWTAssertion]; ok {
			t.Errorf("%s %v: an assertion on a %d", tc.target, tc.header, w.Code)
		}
	}
}

func TestAssertionOffChangesNothing(t *testing.T) {
	s := newStack(t, stackOptions{trusted: testPeer, preflight: true})
	orig := forwardedOriginal("app.example.com")
	for _, tc := range []struct {
		target string
		header []string
	}{
		{"/auth", []string{"Authorization", "Bearer " + aliceToken}},
		{"/auth?optional", nil},
		{"/auth?optional", []string{"Authorization", "Bearer " + aliceToken}},
	} {
		w := s.do("GET", tc.target, hdr(append(tc.header, orig...)...))
		if _, ok := w.Result().Header[HeaderJWTAssertion]; w.Code != 200 || ok {
			t.Errorf("%s: status %d, assertion header present %v", tc.target, w.Code, ok)
		}
	}
	if w := s.do("GET", "/.well-known/jwks.json", nil); w.Code != 404 {
		t.Errorf("JWKS served without keys: %d", w.Code)
	}
}

func TestJWKSEndpoint(t *testing.T) {
	iss := newTestIssuer(t)
	s := newStack(t, stackOptions{assertion: iss})
	w := s.do("GET", "/.well-known/jwks.json", nil)
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" || w.Header().Get("Cache-Control") != "public, max-age=300" {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(w.Body.Bytes(), &set); err != nil || len(set.Keys) != 1 || !set.Keys[0].IsPublic() || set.Keys[0].Algorithm != "ES256" {
		t.Fatalf("%s: %v", w.Body, err)
	}
	if w := s.do("HEAD", "/.well-known/jwks.json", nil); w.Code != 200 || w.Body.Len() != 0 {
		t.Errorf("HEAD: %d, %d bytes", w.Code, w.Body.Len())
	}
}

func TestAssertionReusedThenDroppedByPurge(t *testing.T) {
	iss := newTestIssuer(t)
	s := newStack(t, stackOptions{assertion: iss, trusted: testPeer})
	req := hdr(append([]string{"Authorization", "Bearer " + aliceToken}, forwardedOriginal("app.example.com")...)...)
	get := func() string {
		t.Helper()
		w := s.do("GET", "/auth", req)
		if w.Code != 200 || w.Header().Get(HeaderJWTAssertion) == "" {
			t.Fatalf("status %d, no assertion", w.Code)
		}
		return w.Header().Get(HeaderJWTAssertion)
	}
	first := get()
	if get() != first {
		t.Fatal("the second hit signed again")
	}
	// A purge of the user (webhook, POST /purge) drops the tokens.
	purger := assertion.DroppingPurger{Next: s.revoker, Tokens: iss}
	if err := purger.RevokeUser(t.Context(), alice.UserID); err != nil {
		t.Fatal(err)
	}
	second := get()
	if second == first {
		t.Fatal("the purged user's token was served again")
	}
	// A purge of the credentials alone drops the decision, and so its tokens.
	if err := purger.PurgeCredentials(t.Context(), resolver.Credentials{Bearer: aliceToken}); err != nil {
		t.Fatal(err)
	}
	if get() == second {
		t.Fatal("the purged credential's token was served again")
	}
	if n := s.authgear.Calls(); n != 3 {
		t.Errorf("%d resolver calls, want 3", n)
	}
}

type failingAsserter struct{}

func (failingAsserter) Assertion(*resolver.Decision, string) ([]string, error) {
	return nil, errors.New("no entropy")
}

func TestAssertionFailureIsA500WithoutIdentity(t *testing.T) {
	h := New(Config{Auth: AuthConfig{TrustedProxies: testPeer, Assertion: failingAsserter{}}},
		Deps{Decider: decisionFunc(func() *resolver.Decision { return resolver.Allow(alice, time.Time{}) }), Logger: discard, Registry: prometheus.NewRegistry()})
	r := httptest.NewRequest("GET", "/auth", nil)
	for k, v := range hdr(append([]string{"Authorization", "Bearer " + aliceToken}, forwardedOriginal("app.example.com")...)...) {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 500 {
		t.Fatalf("status %d, want 500", w.Code)
	}
	for k := range w.Header() {
		if strings.HasPrefix(strings.ToLower(k), "x-authgear") {
			t.Errorf("header %s on the 500", k)
		}
	}
}

// originalHostCases: (header pairs, the audience wanted).
var originalHostCases = []struct {
	h   []string
	aud string
}{
	{[]string{"X-Forwarded-Method", "GET", "X-Forwarded-Host", "a.example", "X-Forwarded-Uri", "/"}, "a.example"},
	{[]string{"X-Forwarded-Host", "A.EXAMPLE:443", "X-Forwarded-Uri", "/x"}, "a.example:443"},
	{[]string{"X-Forwarded-Host", "[::1]:8080", "X-Forwarded-Uri", "/x"}, "[::1]:8080"},
	{[]string{"X-Forwarded-Host", "[fe80::1%25eth0]", "X-Forwarded-Uri", "/x"}, ""},
	{[]string{"X-Forwarded-Host", "10.0.0.1", "X-Forwarded-Uri", "/x"}, "10.0.0.1"},
	{[]string{"X-Forwarded-Host", "a.example:", "X-Forwarded-Uri", "/x"}, ""},
	{[]string{"X-Forwarded-Host", "a.example:http", "X-Forwarded-Uri", "/x"}, ""},
	{[]string{"X-Forwarded-Host", "a.example", "X-Forwarded-Uri", "x"}, ""},
	{[]string{"X-Forwarded-Host", "a.example"}, ""},
	{[]string{"X-Forwarded-Host", "a.example/evil", "X-Forwarded-Uri", "/"}, ""},
	{[]string{"X-Original-URL", "https://a.example/p?q#f"}, "a.example"},
	{[]string{"X-Original-URL", "HTTPS://A.example:8443"}, "a.example:8443"},
	{[]string{"X-Original-URL", "https://a.example?q"}, "a.example"},
	{[]string{"X-Original-URL", "https:///p", "X-Original-URI", "/p", "X-Forwarded-Host", "b.example"}, "b.example"},
	{[]string{"X-Original-URL", "ftp://a.example/", "X-Original-URI", "/p", "X-Forwarded-Host", "b.example"}, "b.example"},
	{[]string{"X-Original-URL", "https://a.example/%zz"}, ""},
	{[]string{"X-Original-URL", "https://a.example/ x"}, ""},
	{[]string{"X-Original-URL", "https://a.example/%41"}, "a.example"},
	{[]string{"X-Original-URL", "https://a.exa mple/"}, ""},
	{[]string{"X-Original-URI", "/p"}, ""},
	{[]string{"X-Original-Method", "GET", "X-Forwarded-Method", "GET", "X-Forwarded-Host", "a.example", "X-Forwarded-Uri", "/"}, ""},
	{[]string{"X-Original-URL", "https://b.example/", "X-Forwarded-Uri", "/"}, ""},
	{nil, ""},
}

// TestOriginalHostAgreesWithReadOriginal: the audience is the host that
// readOriginal (which the sign-in redirect uses) reads, lowercased, or none.
func TestOriginalHostAgreesWithReadOriginal(t *testing.T) {
	for _, tc := range originalHostCases {
		h := hdr(tc.h...)
		got := originalHostOf(h)
		if got != tc.aud {
			t.Errorf("%q: audience %q, want %q", tc.h, got, tc.aud)
		}
		agree(t, h, got)
	}
}

func originalHostOf(h http.Header) string {
	v := readHeaders(h)
	return v.originalHost()
}

func agree(t *testing.T, h http.Header, got string) {
	t.Helper()
	if got == "" {
		return
	}
	o := readOriginal(h)
	if o.url == nil || strings.ToLower(o.url.Host) != got {
		t.Errorf("%q: audience %q but readOriginal reads %v", h, got, o.url)
	}
}

func FuzzOriginalHost(f *testing.F) {
	for _, tc := range originalHostCases {
		var url, uri, host string
		for i := 0; i+1 < len(tc.h); i += 2 {
			switch tc.h[i] {
			case "X-Original-URL", "X-Original-URI":
				if tc.h[i] == "X-Original-URL" {
					url = tc.h[i+1]
				} else {
					uri = tc.h[i+1]
				}
			case "X-Forwarded-Host":
				host = tc.h[i+1]
			}
		}
		f.Add(url, uri, host, true)
		f.Add(url, uri, host, false)
	}
	f.Fuzz(func(t *testing.T, url, uri, host string, nginx bool) {
		h := http.Header{}
		if nginx {
			h["X-Original-Url"], h["X-Original-Uri"], h["X-Forwarded-Host"] = []string{url}, []string{uri}, []string{host}
		} else {
			h["X-Forwarded-Uri"], h["X-Forwarded-Host"] = []string{uri}, []string{host}
		}
		agree(t, h, originalHostOf(h))
	})
}

// decisionFunc decides every request the same way.
type decisionFunc func() *resolver.Decision

func (f decisionFunc) Decide(context.Context, resolver.Request) (*resolver.Decision, error) {
	return f(), nil
}

// benchRequestFromGateway is benchRequest as Traefik or Caddy sends it.
func benchRequestFromGateway() *http.Request {
	r := benchRequest()
	r.RemoteAddr = "10.0.0.7:41000"
	// As the server's ConnContext marks the gateway's connection.
	r = r.WithContext(ConnContext(gatewayPeers)(r.Context(), gatewayConn{}))
	o := forwardedOriginal("app.example.com")
	for i := 0; i < len(o); i += 2 {
		r.Header.Set(o[i], o[i+1])
	}
	return r
}

var gatewayPeers = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}

// gatewayConn is the gateway's connection, as ConnContext sees it.
type gatewayConn struct{ net.Conn }

func (gatewayConn) RemoteAddr() net.Addr {
	return net.TCPAddrFromAddrPort(netip.MustParseAddrPort("10.0.0.7:41000"))
}

// bareHandlerNine is the baseline for assertions on: the same nine headers
// (the ninth a token of the usual size), written the plain way.
func bareHandlerNine(token string) http.Handler {
	bare := bareHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(HeaderJWTAssertion, token)
		bare.ServeHTTP(w, r)
	})
}

func BenchmarkBaselineBareHandlerNine(b *testing.B) {
	benchServe(b, bareHandlerNine(benchToken(b)), benchRequest())
}

// benchToken is an assertion of alice, as the service signs it.
func benchToken(b *testing.B) string {
	v, err := newTestIssuer(b).Assertion(resolver.Allow(alice, time.Time{}), "app.example.com")
	if err != nil || v == nil {
		b.Fatal(err)
	}
	return v[0]
}

// BenchmarkAuthHitInProcessGateway is BenchmarkAuthHitInProcess as a
// trusted gateway sends it (X-Forwarded-*), assertions off: what
// BenchmarkAuthHitInProcessAssertion adds to.
func BenchmarkAuthHitInProcessGateway(b *testing.B) {
	s := newStack(b, stackOptions{trusted: gatewayPeers})
	benchServe(b, s.handler, benchRequestFromGateway())
}

// BenchmarkAuthHitInProcessAssertion is BenchmarkAuthHitInProcess with
// ASSERTION_KEYS_FILE set, from a trusted gateway: the token is signed once,
// then every hit finds it.
func BenchmarkAuthHitInProcessAssertion(b *testing.B) {
	s := newStack(b, stackOptions{assertion: newTestIssuer(b), trusted: gatewayPeers})
	r := benchRequestFromGateway()
	w := &benchWriter{h: http.Header{}}
	s.handler.ServeHTTP(w, r)
	if w.h.Get(HeaderJWTAssertion) == "" {
		b.Fatal("no assertion")
	}
	benchServe(b, s.handler, r)
}

// BenchmarkAssertionSign is what one token costs to sign, per algorithm:
// paid once per decision and audience, then again every ASSERTION_TTL.
func BenchmarkAssertionSign(b *testing.B) {
	for _, alg := range []string{"ES256", "EdDSA", "RS256"} {
		b.Run(alg, func(b *testing.B) {
			keys, err := assertion.ParseKeys(benchKeySet(b, alg))
			if err != nil {
				b.Fatal(err)
			}
			// A small bound keeps the kept tokens, and so the collector's
			// work, out of the figure.
			iss, err := assertion.New(b.Context(), assertion.Config{Keys: keys, TTL: 5 * time.Minute, MaxDecisions: 1000}, prometheus.NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			id := alice
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				// A new decision of a new user each time: nothing to reuse.
				n++
				id.UserID = strconv.Itoa(n)
				if v, err := iss.Assertion(resolver.Allow(id, time.Time{}), "app.example.com"); err != nil || v == nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAssertionTakeOver is a new decision saying the same as one
// already asserted (a replica reloading it from Redis every
// LOCAL_CACHE_TTL): its token is taken over, not signed again.
func BenchmarkAssertionTakeOver(b *testing.B) {
	iss := newTestIssuer(b)
	if v, err := iss.Assertion(resolver.Allow(alice, time.Time{}), "app.example.com"); err != nil || v == nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if v, err := iss.Assertion(resolver.Allow(alice, time.Time{}), "app.example.com"); err != nil || v == nil {
			b.Fatal(err)
		}
	}
}

func benchKeySet(b *testing.B, alg string) []byte {
	var raw any
	var err error
	switch alg {
	case "ES256":
		return must(assertion.GenerateSet(nil))
	case "EdDSA":
		_, raw, err = ed25519.GenerateKey(rand.Reader)
	case "RS256":
		raw, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		b.Fatal(err)
	}
	k, err := jwk.Import(raw)
	if err != nil {
		b.Fatal(err)
	}
	set := jwk.NewSet()
	_ = set.AddKey(k)
	return must(json.Marshal(set))
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestAssertionHitDoesNotAllocate: with assertions on, a hit that finds its
// token allocates nothing either.
func TestAssertionHitDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts mean nothing under the race detector")
	}
	s := newStack(t, stackOptions{assertion: newTestIssuer(t), trusted: gatewayPeers})
	r := benchRequestFromGateway()
	w := &benchWriter{h: http.Header{}}
	s.handler.ServeHTTP(w, r)
	if w.code != 200 || w.h.Get(HeaderJWTAssertion) == "" {
		t.Fatalf("status %d, no assertion", w.code)
	}
	if n := testing.AllocsPerRun(200, func() {
		w.reset()
		s.handler.ServeHTTP(w, r)
	}); n != 0 {
		t.Fatalf("%v allocations per hit, want 0", n)
	}
}
