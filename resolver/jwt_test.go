package resolver_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgear/authgear-forwardauth/resolver"
	"github.com/authgear/authgear-forwardauth/resolver/resolvertest"
)

const publicHost = "project.example.com"

var discard = slog.New(slog.DiscardHandler)

func newFake(t *testing.T) *resolvertest.Server {
	t.Helper()
	s := resolvertest.NewServer(publicHost)
	t.Cleanup(s.Close)
	return s
}

// newVerifier starts a verifier against s; it is not necessarily ready.
func newVerifier(t *testing.T, s *resolvertest.Server, mods ...func(*resolver.JWTConfig)) *resolver.JWTVerifier {
	t.Helper()
	cfg := resolver.JWTConfig{Endpoint: s.Endpoint(), DiscoveryURL: s.DiscoveryURL()}
	for _, m := range mods {
		m(&cfg)
	}
	v, err := resolver.NewJWTVerifier(t.Context(), cfg, resolver.NewHTTPClient(5*time.Second), discard)
	if err != nil {
		t.Fatalf("NewJWTVerifier: %v", err)
	}
	return v
}

// readyVerifier is newVerifier once the keys are loaded.
func readyVerifier(t *testing.T, s *resolvertest.Server, mods ...func(*resolver.JWTConfig)) *resolver.JWTVerifier {
	t.Helper()
	v := newVerifier(t, s, mods...)
	eventually(t, "JWKS loaded", v.Ready)
	return v
}

func minRefresh(d time.Duration) func(*resolver.JWTConfig) {
	return func(c *resolver.JWTConfig) { c.MinRefreshInterval = d }
}

// eventually polls cond until it holds, failing the test after a deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var alice = resolver.Identity{
	UserID:            "6b7a1f0e-5d1c-4c55-9a0f-0d7e1e6b2a11",
	Verified:          true,
	CanReauthenticate: true,
	Roles:             []string{"admin", "billing"},
	AMR:               []string{"pwd", "otp"},
	AuthenticatedAt:   1767225600,
}

func TestJWTValidTokenAllowedWithoutResolverCall(t *testing.T) {
	s := newFake(t)
	s.AddUser(alice)
	v := readyVerifier(t, s)
	token := s.IssueJWT(alice.UserID)

	c, err := v.VerifyClaims(t.Context(), token)
	if err != nil {
		t.Fatalf("VerifyClaims: %v", err)
	}
	d := c.Decision
	if !d.Allow {
		t.Fatal("valid token denied")
	}
	if !reflect.DeepEqual(d.Identity, alice) {
		t.Errorf("identity = %+v, want %+v", d.Identity, alice)
	}
	if c.JTI == "" || c.JTI != resolvertest.JTI(token) {
		t.Errorf("jti = %q, want %q", c.JTI, resolvertest.JTI(token))
	}
	if until := time.Until(c.Expires); until < resolvertest.JWTLifetime-time.Minute || until > resolvertest.JWTLifetime {
		t.Errorf("expires in %v, want about %v", until, resolvertest.JWTLifetime)
	}
	if !d.Expires.Equal(c.Expires) {
		t.Errorf("decision expires %v, claims say %v", d.Expires, c.Expires)
	}
	if n := s.Calls(); n != 0 {
		t.Errorf("resolver called %d times, want 0", n)
	}
}

// TestJWTAccepted: variations Authgear (or RFC 9068) allows.
func TestJWTAccepted(t *testing.T) {
	s := newFake(t)
	s.AddUser(alice)
	v := readyVerifier(t, s, func(c *resolver.JWTConfig) {
		c.ExtraAudiences = []string{"https://api.example.com"}
	})
	now := time.Now()
	for _, tc := range []struct {
		name string
		opts []resolvertest.JWTOption
	}{
		{"extra audience accepted when configured", []resolvertest.JWTOption{resolvertest.WithClaim("aud", []string{"https://api.example.com"})}},
		{"aud as a single string", []resolvertest.JWTOption{resolvertest.WithClaim("aud", "https://"+publicHost)}},
		{"aud among others", []resolvertest.JWTOption{resolvertest.WithClaim("aud", []string{"https://x.example", "https://" + publicHost})}},
		{"typ application/at+jwt", []resolvertest.JWTOption{resolvertest.WithHeader("typ", "application/at+jwt")}},
		{"typ in upper case", []resolvertest.JWTOption{resolvertest.WithHeader("typ", "AT+JWT")}},
		{"iat within leeway", []resolvertest.JWTOption{resolvertest.WithClaim("iat", now.Add(10*time.Second).Unix())}},
		{"nbf within leeway", []resolvertest.JWTOption{resolvertest.WithClaim("nbf", now.Add(10*time.Second).Unix())}},
		{"nbf in the past", []resolvertest.JWTOption{resolvertest.WithClaim("nbf", now.Add(-time.Minute).Unix())}},
		{"no jti", []resolvertest.JWTOption{resolvertest.WithClaim("jti", nil)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := v.Verify(t.Context(), s.IssueJWT(alice.UserID, tc.opts...))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !reflect.DeepEqual(d.Identity, alice) {
				t.Errorf("identity = %+v, want %+v", d.Identity, alice)
			}
		})
	}
}

func TestJWTMinimalClaimsGiveEmptyIdentityFields(t *testing.T) {
	s := newFake(t)
	bob := resolver.Identity{UserID: "bob", Anonymous: true}
	s.AddUser(bob)
	v := readyVerifier(t, s)
	d, err := v.Verify(t.Context(), s.IssueJWT("bob",
		resolvertest.WithClaim(resolvertest.ClaimRoles, nil),
		resolvertest.WithClaim(resolvertest.ClaimIsVerified, nil),
	))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !reflect.DeepEqual(d.Identity, bob) {
		t.Errorf("identity = %#v, want %#v (Roles and AMR nil, AuthenticatedAt 0)", d.Identity, bob)
	}
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestJWTRejected(t *testing.T) {
	s := newFake(t)
	s.AddUser(alice)
	s.AddUser(resolver.Identity{UserID: "mallory"})
	v := readyVerifier(t, s)
	now := time.Now()

	pub := s.CurrentPublicKey()
	pkix, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PublicKey(pub)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	good := s.IssueJWT(alice.UserID)
	parts := strings.Split(good, ".")
	malloryParts := strings.Split(s.IssueJWT("mallory"), ".")
	flip := func(seg string, i int) string {
		b := []byte(seg)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	garbage := make([]byte, 10<<10)
	_, _ = rand.Read(garbage)
	issue := func(opts ...resolvertest.JWTOption) string { return s.IssueJWT(alice.UserID, opts...) }
	W := resolvertest.WithClaim
	H := resolvertest.WithHeader

	for _, tc := range []struct {
		name  string
		token string
	}{
		{"empty", ""},
		{"bad signature (a bit flipped)", parts[0] + "." + parts[1] + "." + flip(parts[2], 20)},
		{"bad signature (payload swapped)", parts[0] + "." + malloryParts[1] + "." + parts[2]},
		{"signed by another key under a known kid", issue(resolvertest.SignedWithRSA("RS256", other))},
		{"alg none, no signature", issue(resolvertest.Unsigned())},
		{"alg none, real signature kept", issue(H("alg", "none"))},
		{"alg None", issue(H("alg", "None"))},
		{"no alg", issue(H("alg", nil))},
		{"alg HS256 keyed with the PKIX PEM public key", issue(resolvertest.SignedWithHMAC(pemBlock("PUBLIC KEY", pkix)))},
		{"alg HS256 keyed with the PKCS1 PEM public key", issue(resolvertest.SignedWithHMAC(pemBlock("RSA PUBLIC KEY", pkcs1)))},
		{"alg HS256 keyed with the DER public key", issue(resolvertest.SignedWithHMAC(pkix))},
		{"alg RS512 with the right key", issue(resolvertest.SignedWithRSA("RS512", nil))},
		{"alg PS256 with the right key", issue(resolvertest.SignedWithRSA("PS256", nil))},
		{"header says RS512, signed RS256", issue(H("alg", "RS512"))},
		{"wrong iss", issue(W("iss", "https://evil.example.com"))},
		{"iss with a trailing slash", issue(W("iss", "https://"+publicHost+"/"))},
		{"iss over http", issue(W("iss", "http://"+publicHost))},
		{"no iss", issue(W("iss", nil))},
		{"wrong aud", issue(W("aud", []string{"https://evil.example.com"}))},
		{"extra audience not configured", issue(W("aud", []string{"https://api.example.com"}))},
		{"aud is the client id", issue(W("aud", "fake-client"))},
		{"no aud", issue(W("aud", nil))},
		{"expired", issue(W("exp", now.Add(-2*time.Minute).Unix()))},
		// Authgear applies no leeway to exp: neither may we (the bug found
		// against a real Authgear was a token 22 s past exp, allowed).
		{"expired 22 s ago", issue(W("exp", now.Add(-22*time.Second).Unix()))},
		{"expired 2 s ago", issue(W("exp", now.Add(-2*time.Second).Unix()))},
		{"no exp", issue(W("exp", nil))},
		{"not yet valid (nbf)", issue(W("nbf", now.Add(5*time.Minute).Unix()))},
		{"issued in the future (iat)", issue(W("iat", now.Add(5*time.Minute).Unix()))},
		{"typ JWT", issue(H("typ", "JWT"))},
		{"no typ", issue(H("typ", nil))},
		{"typ not a string", issue(H("typ", 1))},
		{"typ in a differently cased key", issue(H("typ", "JWT"), H("Typ", "at+jwt"))},
		{"unknown kid", issue(resolvertest.WithKID("made-up"))},
		{"no kid", issue(H("kid", nil))},
		{"unknown crit header", issue(H("crit", []string{"x-must"}), H("x-must", true))},
		{"empty sub", issue(W("sub", ""))},
		{"no sub", issue(W("sub", nil))},
		{"sub with a control byte", issue(W("sub", "alice\r\nX-Authgear-User-Id: root"))},
		{"sub not ASCII", issue(W("sub", "alicé"))},
		{"role with a newline", issue(W(resolvertest.ClaimRoles, []string{"admin\nx"}))},
		{"roles not an array", issue(W(resolvertest.ClaimRoles, "admin"))},
		{"role not a string", issue(W(resolvertest.ClaimRoles, []any{"admin", 1}))},
		{"amr not strings", issue(W("amr", []any{1}))},
		{"is_verified a string", issue(W(resolvertest.ClaimIsVerified, "true"))},
		{"is_anonymous a number", issue(W(resolvertest.ClaimIsAnonymous, 0))},
		{"auth_time a string", issue(W("auth_time", "1767225600"))},
		{"auth_time negative", issue(W("auth_time", -1))},
		{"malformed base64 header", "!!!." + parts[1] + "." + parts[2]},
		{"padded base64", parts[0] + "=." + parts[1] + "." + parts[2]},
		{"header not JSON", b64([]byte("not json")) + "." + parts[1] + "." + parts[2]},
		{"payload not base64", parts[0] + ".*." + parts[2]},
		{"two segments", parts[0] + "." + parts[1]},
		{"four segments", good + "." + parts[2]},
		{"JWE-like five segments", parts[0] + "..." + parts[1] + "." + parts[2]},
		{"10 KB of random bytes", string(garbage)},
		{"10 KB of base64url in three segments", b64(garbage[:3000]) + "." + b64(garbage[3000:6000]) + "." + b64(garbage[6000:])},
		{"oversized garbage", parts[0] + "." + b64(make([]byte, 20<<10)) + "." + parts[2]},
		{"oversized but validly signed", issue(W("padding", strings.Repeat("x", resolver.MaxJWTSize)))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := v.Verify(t.Context(), tc.token)
			if !errors.Is(err, resolver.ErrInvalidToken) {
				t.Fatalf("Verify = %v, %v; want ErrInvalidToken", d, err)
			}
			if errors.Is(err, resolver.ErrUnavailable) {
				t.Errorf("error %v is also ErrUnavailable", err)
			}
			if d != nil {
				t.Errorf("decision %v returned with an error", d)
			}
		})
	}
	if n := s.Calls(); n != 0 {
		t.Errorf("resolver called %d times, want 0", n)
	}
}

// TestJWTExpiryHasNoLeeway: on a clock of its own, a token is good until the
// second before its exp and refused from exp on, while nbf and iat keep
// their leeway for clock skew.
func TestJWTExpiryHasNoLeeway(t *testing.T) {
	s := newFake(t)
	s.AddUser(alice)
	now := time.Now().Truncate(time.Second)
	var clock time.Time
	v := readyVerifier(t, s, func(c *resolver.JWTConfig) { c.Clock = func() time.Time { return clock } })
	exp := now.Add(time.Minute)
	tok := s.IssueJWT(alice.UserID, resolvertest.WithClaim("exp", exp.Unix()),
		resolvertest.WithClaim("iat", now.Add(10*time.Second).Unix()), resolvertest.WithClaim("nbf", now.Add(10*time.Second).Unix()))
	for _, tc := range []struct {
		at   time.Time
		good bool
	}{
		{now, true}, // iat and nbf 10 s ahead: within the leeway
		{exp.Add(-time.Second), true},
		{exp.Add(-time.Millisecond), true},
		{exp, false},
		{exp.Add(time.Millisecond), false},
		{exp.Add(3 * time.Second), false},
		{exp.Add(22 * time.Second), false},
	} {
		clock = tc.at
		_, err := v.Verify(t.Context(), tok)
		if tc.good != (err == nil) {
			t.Errorf("at exp%+v: Verify error %v, want good=%v", tc.at.Sub(exp), err, tc.good)
		}
		if err != nil && !errors.Is(err, resolver.ErrInvalidToken) {
			t.Errorf("at exp%+v: %v, want ErrInvalidToken", tc.at.Sub(exp), err)
		}
	}
}

func TestJWTErrorsNeverContainTheToken(t *testing.T) {
	s := newFake(t)
	v := readyVerifier(t, s)
	for _, token := range []string{
		s.IssueJWT("u", resolvertest.WithClaim("exp", time.Now().Add(-time.Hour).Unix())),
		s.IssueJWT("u", resolvertest.WithKID("made-up")),
		s.IssueJWT("u", resolvertest.WithHeader("typ", "JWT")),
	} {
		_, err := v.Verify(t.Context(), token)
		if err == nil {
			t.Fatal("accepted")
		}
		sig := token[strings.LastIndexByte(token, '.')+1:]
		if strings.Contains(err.Error(), sig) || strings.Contains(err.Error(), token[:strings.IndexByte(token, '.')]) {
			t.Errorf("error %q contains part of the token", err)
		}
	}
}

func TestJWTKeyRotation(t *testing.T) {
	s := newFake(t)
	s.AddUser(alice)
	v := readyVerifier(t, s, minRefresh(time.Millisecond))
	oldKID := s.CurrentKID()
	oldToken := s.IssueJWT(alice.UserID)

	newKID := s.RotateKey()
	if newKID == oldKID {
		t.Fatal("RotateKey kept the kid")
	}
	newToken := s.IssueJWT(alice.UserID)
	// The first unknown kid refreshes the JWKS at once (no earlier refresh).
	if _, err := v.Verify(t.Context(), newToken); err != nil {
		t.Fatalf("token of the new key: %v", err)
	}
	if _, err := v.Verify(t.Context(), oldToken); err != nil {
		t.Fatalf("token of the old key, still published: %v", err)
	}

	s.RemoveKey(oldKID)
	// Removal is seen at the next refresh: unknown kids trigger one per
	// MinRefreshInterval (1ms here).
	probe := s.IssueJWT(alice.UserID, resolvertest.WithKID("probe"))
	eventually(t, "old key dropped", func() bool {
		_, _ = v.Verify(t.Context(), probe)
		_, err := v.Verify(t.Context(), oldToken)
		return errors.Is(err, resolver.ErrInvalidToken)
	})
	if _, err := v.Verify(t.Context(), newToken); err != nil {
		t.Fatalf("token of the new key after removal of the old: %v", err)
	}
}

func TestJWTUnknownKidFloodBoundedFetches(t *testing.T) {
	s := newFake(t)
	s.AddUser(alice)
	v := readyVerifier(t, s, minRefresh(time.Hour))
	before := s.JWKSFetches()

	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for g := range 20 {
		wg.Go(func() {
			for i := range 50 {
				token := s.IssueJWT(alice.UserID, resolvertest.WithKID(strings.Repeat("x", g+1)+string(rune('a'+i%26))), resolvertest.WithSignature("c2ln"))
				_, err := v.Verify(t.Context(), token)
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, resolver.ErrInvalidToken) {
			t.Fatalf("made-up kid: %v, want ErrInvalidToken", err)
		}
	}
	if n := s.JWKSFetches() - before; n != 1 {
		t.Errorf("1000 made-up kids caused %d JWKS fetches, want 1", n)
	}

	// The limit holds for real new keys too until MinRefreshInterval passes.
	s.RotateKey()
	if _, err := v.Verify(t.Context(), s.IssueJWT(alice.UserID)); !errors.Is(err, resolver.ErrInvalidToken) {
		t.Errorf("new kid within the refresh limit: %v, want ErrInvalidToken", err)
	}
	if n := s.JWKSFetches() - before; n != 1 {
		t.Errorf("JWKS fetches = %d, want still 1", n)
	}
	if n := s.Calls(); n != 0 {
		t.Errorf("resolver called %d times, want 0", n)
	}
}

func TestJWTUnavailableAtStartThenRecovers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		discovery bool // discovery fails too
	}{
		{"discovery and JWKS down", true},
		{"only JWKS down", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newFake(t)
			s.AddUser(alice)
			s.SetJWKSFailure(true)
			s.SetDiscoveryFailure(tc.discovery)
			token := s.IssueJWT(alice.UserID)

			v := newVerifier(t, s, minRefresh(20*time.Millisecond))
			if tc.discovery {
				eventually(t, "discovery retried", func() bool { return s.DiscoveryFetches() >= 2 })
			} else {
				eventually(t, "JWKS retried", func() bool { return s.JWKSFetches() >= 2 })
			}
			_, err := v.Verify(t.Context(), token)
			if !errors.Is(err, resolver.ErrUnavailable) {
				t.Fatalf("Verify before any keys = %v, want ErrUnavailable", err)
			}
			if errors.Is(err, resolver.ErrInvalidToken) {
				t.Fatalf("Verify before any keys is also ErrInvalidToken: %v", err)
			}
			// Malformed tokens are still invalid: no keys needed to say so.
			if _, err := v.Verify(t.Context(), "a.b"); !errors.Is(err, resolver.ErrInvalidToken) {
				t.Errorf("malformed token before keys: %v, want ErrInvalidToken", err)
			}

			s.SetJWKSFailure(false)
			eventually(t, "recovered", func() bool {
				_, err := v.Verify(t.Context(), token)
				return err == nil
			})
		})
	}
}

func TestJWTKeepsLastGoodKeysWhenJWKSDown(t *testing.T) {
	s := newFake(t)
	s.AddUser(alice)
	v := readyVerifier(t, s, minRefresh(time.Millisecond))
	token := s.IssueJWT(alice.UserID)
	s.SetJWKSFailure(true)
	before := s.JWKSFetches()

	// An unknown kid forces a refresh, which fails: the key may be real, so
	// the answer is "unknown", not "invalid".
	_, err := v.Verify(t.Context(), s.IssueJWT(alice.UserID, resolvertest.WithKID("new-but-unfetchable")))
	if !errors.Is(err, resolver.ErrUnavailable) {
		t.Errorf("unknown kid with the JWKS down: %v, want ErrUnavailable", err)
	}
	if s.JWKSFetches() == before {
		t.Fatal("no refresh was attempted")
	}
	if _, err := v.Verify(t.Context(), token); err != nil {
		t.Fatalf("known key after a failed refresh: %v", err)
	}
	if !v.Ready() {
		t.Error("not Ready after a failed refresh")
	}
}

func TestJWTDiscoveryIssuerMismatchNeverTrusted(t *testing.T) {
	s := newFake(t)
	v := newVerifier(t, s, minRefresh(20*time.Millisecond), func(c *resolver.JWTConfig) {
		// Same host, but the fake's issuer is https: the origins differ.
		c.Endpoint = &url.URL{Scheme: "http", Host: publicHost}
	})
	eventually(t, "discovery retried", func() bool { return s.DiscoveryFetches() >= 3 })
	if _, err := v.Verify(t.Context(), s.IssueJWT("u")); !errors.Is(err, resolver.ErrUnavailable) {
		t.Errorf("Verify = %v, want ErrUnavailable", err)
	}
	if n := s.JWKSFetches(); n != 0 {
		t.Errorf("JWKS fetched %d times from an untrusted discovery document", n)
	}
}

// TestJWTHeadersMatchResolver: whether a token is checked locally or by
// Authgear's resolver, the upstream sees the same bytes.
func TestJWTHeadersMatchResolver(t *testing.T) {
	s := newFake(t)
	users := []resolver.Identity{
		alice,
		{UserID: "anon", Anonymous: true},
		{UserID: "one-role", Roles: []string{"reader"}, AMR: []string{"pwd"}},
		{UserID: "no-amr-but-time", Verified: true, AuthenticatedAt: 1700000000},
	}
	for _, u := range users {
		s.AddUser(u)
	}
	v := readyVerifier(t, s)
	client := resolver.NewClient(resolver.ClientConfig{
		Endpoint:    s.Endpoint(),
		ResolverURL: s.ResolverURL(),
		Timeout:     5 * time.Second,
	}, resolver.NewHTTPClient(5*time.Second), discard, prometheus.NewRegistry())

	for _, u := range users {
		t.Run(u.UserID, func(t *testing.T) {
			token := s.IssueJWT(u.UserID)
			local, err := v.Verify(t.Context(), token)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			remote, err := client.Resolve(t.Context(), resolver.Request{Credentials: resolver.Credentials{Bearer: token}})
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if !remote.Allow {
				t.Fatal("the fake's resolver denied its own token")
			}
			if !reflect.DeepEqual(local.Header(), remote.Header()) {
				t.Errorf("headers differ:\nlocal  %v\nremote %v", local.Header(), remote.Header())
			}
			if !reflect.DeepEqual(local.Identity, remote.Identity) {
				t.Errorf("identities differ:\nlocal  %#v\nremote %#v", local.Identity, remote.Identity)
			}
		})
	}
}

// TestFakeResolverJWTFreshness: the fake's resolver, like Authgear's, stops
// accepting a revoked or rotated-out JWT that a local check still accepts
// (revocation) until it expires.
func TestFakeResolverJWTFreshness(t *testing.T) {
	s := newFake(t)
	s.AddUser(alice)
	v := readyVerifier(t, s)
	client := resolver.NewClient(resolver.ClientConfig{
		Endpoint: s.Endpoint(), ResolverURL: s.ResolverURL(), Timeout: 5 * time.Second,
	}, resolver.NewHTTPClient(5*time.Second), discard, prometheus.NewRegistry())
	resolve := func(token string) *resolver.Decision {
		t.Helper()
		d, err := client.Resolve(t.Context(), resolver.Request{Credentials: resolver.Credentials{Bearer: token}})
		if err != nil {
			t.Fatalf("Resolve: %v", err)
		}
		return d
	}

	revoked := s.IssueJWT(alice.UserID)
	s.RevokeJWT(resolvertest.JTI(revoked))
	if resolve(revoked).Allow {
		t.Error("resolver accepted a revoked JWT")
	}
	if _, err := v.Verify(t.Context(), revoked); err != nil {
		t.Errorf("local check of a revoked JWT: %v (it cannot know)", err)
	}

	for name, token := range map[string]string{
		"expired":   s.IssueJWT(alice.UserID, resolvertest.WithClaim("exp", time.Now().Add(-time.Minute).Unix())),
		"wrong aud": s.IssueJWT(alice.UserID, resolvertest.WithClaim("aud", []string{"https://other.example"})),
		"forged":    s.IssueJWT(alice.UserID, resolvertest.SignedWithHMAC([]byte("secret"))),
	} {
		if resolve(token).Allow {
			t.Errorf("resolver accepted a JWT with %s", name)
		}
	}

	s.DisableUser(alice.UserID, true)
	if resolve(s.IssueJWT(alice.UserID)).Allow {
		t.Error("resolver accepted the JWT of a disabled user")
	}
}

func TestLooksLikeJWT(t *testing.T) {
	for _, tc := range []struct {
		token string
		want  bool
	}{
		{"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln", true},
		{"a.b.c", true},
		{"a-_.b.c", true},
		{"", false},
		{"opaque-token-without-dots", false},
		{"a.b", false},
		{"a.b.c.d", false},
		{"a.b.", true}, // unsigned (alg none): refused locally, not sent to Authgear
		{".b.c", false},
		{"a..c", false},
		{"a.b=.c", false},
		{"a.b+/.c", false},
		{"a.b.c ", false},
		{"a.b.c\n", false},
	} {
		if got := resolver.LooksLikeJWT(tc.token); got != tc.want {
			t.Errorf("LooksLikeJWT(%q) = %v, want %v", tc.token, got, tc.want)
		}
	}
}
