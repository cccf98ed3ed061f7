package assertion

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgear/authgear-forwardauth/internal/clocktest"
	"github.com/authgear/authgear-forwardauth/resolver"
)

var alice = resolver.Identity{
	UserID: "0b6cbbd4-7a45-4ab4-b2c3-6ea8b6e8a001", Verified: true, CanReauthenticate: true,
	Roles: []string{"admin", "editor"}, AMR: []string{"pwd", "otp"}, AuthenticatedAt: 1764000000,
}

var bob = resolver.Identity{UserID: "b0b", Anonymous: true}

func newClock() *clocktest.Clock { return clocktest.New(time.Unix(1_800_000_000, 0)) }

// jwkOf turns a raw private (or public) key into a JWK with the given
// members set ("" values are left out).
func jwkOf(t *testing.T, raw any, members ...string) jwk.Key {
	t.Helper()
	k, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(members); i += 2 {
		if members[i+1] == "" {
			continue
		}
		if err := k.Set(members[i], members[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

func setOf(t *testing.T, keys ...jwk.Key) []byte {
	t.Helper()
	s := jwk.NewSet()
	for _, k := range keys {
		if err := s.AddKey(k); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ecKey(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func rsaKey(t *testing.T, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustKeys(t *testing.T, data []byte) *Keys {
	t.Helper()
	k, err := ParseKeys(data)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newIssuer(t *testing.T, keys *Keys, ttl time.Duration, clock Clock) *Issuer {
	t.Helper()
	i, err := New(t.Context(), Config{Keys: keys, TTL: ttl, Clock: clock}, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// verified checks raw with go-jose, an implementation independent of the
// one that signed it, against the public JWK Set, and returns its claims.
func verified(t *testing.T, jwks []byte, raw string, now time.Time, aud string) (josejwt.Claims, map[string]any) {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatalf("go-jose cannot read the JWK Set: %v", err)
	}
	tok, err := josejwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.EdDSA, jose.RS256, jose.PS256})
	if err != nil {
		t.Fatalf("go-jose cannot parse the token: %v", err)
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q: %d keys in the JWK Set", tok.Headers[0].KeyID, len(keys))
	}
	var std josejwt.Claims
	var all map[string]any
	if err := tok.Claims(keys[0].Key, &std, &all); err != nil {
		t.Fatalf("go-jose: the signature does not verify: %v", err)
	}
	if err := std.ValidateWithLeeway(josejwt.Expected{Issuer: DefaultIssuer, AnyAudience: josejwt.Audience{aud}, Time: now}, 0); err != nil {
		t.Fatalf("go-jose: claims: %v", err)
	}
	return std, all
}

// handChecked verifies an ES256 token with nothing but crypto/ecdsa, reading
// the JWK Set and the token by hand: the signature is r||s, 32 bytes each.
func handChecked(t *testing.T, jwks []byte, raw string) (header, payload map[string]any) {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("%d parts", len(parts))
	}
	dec := func(s string, v any) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("not base64url without padding: %v", err)
		}
		if v != nil {
			if err := json.Unmarshal(b, v); err != nil {
				t.Fatal(err)
			}
		}
		return b
	}
	dec(parts[0], &header)
	dec(parts[1], &payload)
	sig := dec(parts[2], nil)
	if header["alg"] != "ES256" || header["typ"] != "JWT" {
		t.Fatalf("header %v", header)
	}
	var set struct {
		Keys []struct{ Kid, Kty, Crv, X, Y, D string } `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		if k.Kid != header["kid"] {
			continue
		}
		if k.Kty != "EC" || k.Crv != "P-256" || k.D != "" {
			t.Fatalf("published key %+v", k)
		}
		x, y := dec(k.X, nil), dec(k.Y, nil)
		if len(x) != 32 || len(y) != 32 {
			t.Fatalf("coordinates of %d and %d bytes, want 32", len(x), len(y))
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			t.Fatal(err)
		}
		if len(sig) != 64 {
			t.Fatalf("ES256 signature of %d bytes, want 64 (r||s)", len(sig))
		}
		digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		if !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			t.Fatal("crypto/ecdsa: the signature does not verify")
		}
		return header, payload
	}
	t.Fatalf("kid %v not in the JWK Set", header["kid"])
	return nil, nil
}

func TestClaims(t *testing.T) {
	keys := mustKeys(t, setOf(t, jwkOf(t, ecKey(t, elliptic.P256()), "kid", "k1")))
	clock := newClock()
	iss := newIssuer(t, keys, 5*time.Minute, clock)
	v, err := iss.Assertion(resolver.Allow(alice, time.Time{}), "app.example.com")
	if err != nil || len(v) != 1 {
		t.Fatalf("%v %v", v, err)
	}
	std, all := verified(t, keys.PublicJWKS(), v[0], clock.Now(), "app.example.com")
	header, payload := handChecked(t, keys.PublicJWKS(), v[0])
	if header["kid"] != "k1" {
		t.Errorf("kid %v", header["kid"])
	}
	if std.Subject != alice.UserID || std.IssuedAt.Time() != clock.Now() || std.Expiry.Time() != clock.Now().Add(5*time.Minute) || len(std.ID) < 16 {
		t.Errorf("registered claims %+v", std)
	}
	want := map[string]any{
		"iss": "authgear-forwardauth", "aud": "app.example.com", "sub": alice.UserID,
		"iat": float64(1_800_000_000), "exp": float64(1_800_000_300), "jti": std.ID,
		"auth_time": float64(1764000000), "amr": []any{"pwd", "otp"},
		"https://authgear.com/claims/user/roles":              []any{"admin", "editor"},
		"https://authgear.com/claims/user/is_anonymous":       false,
		"https://authgear.com/claims/user/is_verified":        true,
		"https://authgear.com/claims/user/can_reauthenticate": true,
	}
	for _, got := range []map[string]any{all, payload} {
		b1, _ := json.Marshal(got)
		b2, _ := json.Marshal(want)
		if string(b1) != string(b2) {
			t.Errorf("claims\n got %s\nwant %s", b1, b2)
		}
	}

	// A user with no roles, AMR or auth time: arrays stay arrays.
	v, _ = iss.Assertion(resolver.Allow(bob, time.Time{}), "app.example.com")
	_, all = verified(t, keys.PublicJWKS(), v[0], clock.Now(), "app.example.com")
	if r, ok := all[ClaimRoles].([]any); !ok || len(r) != 0 {
		t.Errorf("roles %#v, want []", all[ClaimRoles])
	}
	if r, ok := all["amr"].([]any); !ok || len(r) != 0 {
		t.Errorf("amr %#v, want []", all["amr"])
	}
	if _, ok := all["auth_time"]; ok {
		t.Errorf("auth_time present while unknown")
	}
	if all[ClaimIsAnonymous] != true || all[ClaimIsVerified] != false {
		t.Errorf("flags %v", all)
	}

	// A deny has nothing to assert.
	if v, err := iss.Assertion(resolver.Deny(), "app.example.com"); v != nil || err != nil {
		t.Errorf("deny: %v %v", v, err)
	}
}

func TestIssuerFromConfig(t *testing.T) {
	keys := mustKeys(t, setOf(t, jwkOf(t, ecKey(t, elliptic.P256()))))
	i, err := New(t.Context(), Config{Keys: keys, TTL: time.Minute, Issuer: "https://gw.example"}, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	v, _ := i.Assertion(resolver.Allow(alice, time.Time{}), "a.example")
	_, p := handChecked(t, keys.PublicJWKS(), v[0])
	if p["iss"] != "https://gw.example" {
		t.Errorf("iss %v", p["iss"])
	}
	for _, ttl := range []time.Duration{0, 9 * time.Second, 2 * time.Hour} {
		if _, err := New(t.Context(), Config{Keys: keys, TTL: ttl}, prometheus.NewRegistry()); err == nil {
			t.Errorf("TTL %s accepted", ttl)
		}
	}
}

func TestAudienceBinding(t *testing.T) {
	keys := mustKeys(t, setOf(t, jwkOf(t, ecKey(t, elliptic.P256()))))
	clock := newClock()
	iss := newIssuer(t, keys, 5*time.Minute, clock)
	d := resolver.Allow(alice, time.Time{})
	a, _ := iss.Assertion(d, "a.example.com")
	b, _ := iss.Assertion(d, "b.example.com")
	if a[0] == b[0] {
		t.Fatal("one token for two audiences")
	}
	verified(t, keys.PublicJWKS(), a[0], clock.Now(), "a.example.com")
	verified(t, keys.PublicJWKS(), b[0], clock.Now(), "b.example.com")
	// Captured at one application, refused by the other.
	tok, _ := josejwt.ParseSigned(a[0], []jose.SignatureAlgorithm{jose.ES256})
	var set jose.JSONWebKeySet
	_ = json.Unmarshal(keys.PublicJWKS(), &set)
	var std josejwt.Claims
	if err := tok.Claims(set.Keys[0].Key, &std); err != nil {
		t.Fatal(err)
	}
	if err := std.Validate(josejwt.Expected{AnyAudience: josejwt.Audience{"b.example.com"}, Time: clock.Now()}); err == nil {
		t.Error("a token for a.example.com passes as b.example.com's")
	}
	// Each is reused for its own audience.
	if again, _ := iss.Assertion(d, "a.example.com"); &again[0] != &a[0] {
		t.Error("a second request signed again")
	}
	if iss.held(d) != 2 {
		t.Errorf("%d tokens held, want 2", iss.held(d))
	}
	// At most maxAudiences per decision.
	for n := range 20 {
		if v, _ := iss.Assertion(d, "h"+string(rune('a'+n))+".example"); v == nil {
			t.Fatal("no token")
		}
	}
	if n := iss.held(d); n != maxAudiences {
		t.Errorf("%d tokens held, want at most %d", n, maxAudiences)
	}
	if v, _ := iss.Assertion(d, ""); v != nil {
		t.Error("a token for an empty audience")
	}
}

func TestReuseAndRefresh(t *testing.T) {
	keys := mustKeys(t, setOf(t, jwkOf(t, ecKey(t, elliptic.P256()))))
	clock := newClock()
	iss := newIssuer(t, keys, 5*time.Minute, clock)
	d := resolver.Allow(alice, time.Time{})
	first, _ := iss.Assertion(d, "app.example")
	clock.Advance(4*time.Minute + 29*time.Second) // 31 s left: still served
	if v, _ := iss.Assertion(d, "app.example"); v[0] != first[0] {
		t.Fatal("replaced with more than the margin left")
	}
	clock.Advance(time.Second) // 30 s left: replaced
	second, _ := iss.Assertion(d, "app.example")
	if second[0] == first[0] {
		t.Fatal("served with only the margin left")
	}
	std, _ := verified(t, keys.PublicJWKS(), second[0], clock.Now(), "app.example")
	if std.Expiry.Time() != clock.Now().Add(5*time.Minute) {
		t.Errorf("exp %v", std.Expiry.Time())
	}
	if got := testutil.ToFloat64(iss.signed); got != 2 {
		t.Errorf("%v signed, want 2", got)
	}
}

func TestExpiryCappedByTheDecision(t *testing.T) {
	keys := mustKeys(t, setOf(t, jwkOf(t, ecKey(t, elliptic.P256()))))
	clock := newClock()
	iss := newIssuer(t, keys, 5*time.Minute, clock)
	// A JWT access token expiring in 90.5 s: the assertion ends with it
	// (in whole seconds, not after it).
	d := resolver.Allow(alice, clock.Now().Add(90*time.Second+500*time.Millisecond))
	v, _ := iss.Assertion(d, "app.example")
	std, _ := verified(t, keys.PublicJWKS(), v[0], clock.Now(), "app.example")
	if want := clock.Now().Add(90 * time.Second); std.Expiry.Time() != want {
		t.Errorf("exp %v, want %v", std.Expiry.Time(), want)
	}
	// Signing again could not give more: the same token to the end.
	clock.Advance(80 * time.Second)
	if again, _ := iss.Assertion(d, "app.example"); again[0] != v[0] {
		t.Error("re-signed a capped token")
	}
	clock.Advance(9 * time.Second) // 0.5 s left: no token worth handing out
	if again, err := iss.Assertion(d, "app.example"); again != nil || err != nil {
		t.Errorf("in the decision's last second: %v %v", again, err)
	}
	clock.Advance(time.Second)
	if again, err := iss.Assertion(d, "app.example"); again != nil || err != nil {
		t.Errorf("after the decision's expiry: %v %v", again, err)
	}
	if got := testutil.ToFloat64(iss.signed); got != 1 {
		t.Errorf("%v signed, want 1", got)
	}
	// Not capped when the decision outlives the TTL.
	d = resolver.Allow(alice, clock.Now().Add(time.Hour))
	v, _ = iss.Assertion(d, "app.example")
	std, _ = verified(t, keys.PublicJWKS(), v[0], clock.Now(), "app.example")
	if want := clock.Now().Add(5 * time.Minute); std.Expiry.Time() != want {
		t.Errorf("exp %v, want %v", std.Expiry.Time(), want)
	}
}

func TestRotation(t *testing.T) {
	oldKey := jwkOf(t, ecKey(t, elliptic.P256()), "kid", "old")
	newKey := jwkOf(t, ecKey(t, elliptic.P256()), "kid", "new")
	clock := newClock()
	before := newIssuer(t, mustKeys(t, setOf(t, oldKey)), 5*time.Minute, clock)
	oldToken, _ := before.Assertion(resolver.Allow(alice, time.Time{}), "app.example")

	// Step 1 (genkey current.json): the new key published, the old one signs.
	published := mustKeys(t, setOf(t, oldKey, newKey))
	if published.KeyID() != "old" {
		t.Errorf("signing kid %q, want old", published.KeyID())
	}
	// Step 2: the new key first.
	after := mustKeys(t, setOf(t, newKey, oldKey))
	iss := newIssuer(t, after, 5*time.Minute, clock)
	newToken, _ := iss.Assertion(resolver.Allow(alice, time.Time{}), "app.example")
	h, _ := handChecked(t, after.PublicJWKS(), newToken[0])
	if h["kid"] != "new" {
		t.Errorf("signed with %v, want new", h["kid"])
	}
	// The old key's tokens still verify against the JWKS.
	h, _ = handChecked(t, after.PublicJWKS(), oldToken[0])
	if h["kid"] != "old" {
		t.Errorf("kid %v", h["kid"])
	}
	verified(t, after.PublicJWKS(), oldToken[0], clock.Now(), "app.example")
	verified(t, after.PublicJWKS(), newToken[0], clock.Now(), "app.example")
	// Step 3: a public-only old key may stay published.
	oldPub, err := oldKey.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	verified(t, mustKeys(t, setOf(t, newKey, oldPub)).PublicJWKS(), oldToken[0], clock.Now(), "app.example")
}

func TestDropUser(t *testing.T) {
	keys := mustKeys(t, setOf(t, jwkOf(t, ecKey(t, elliptic.P256()))))
	iss := newIssuer(t, keys, 5*time.Minute, newClock())
	da, db := resolver.Allow(alice, time.Time{}), resolver.Allow(bob, time.Time{})
	a1, _ := iss.Assertion(da, "x.example")
	iss.Assertion(da, "y.example")
	b1, _ := iss.Assertion(db, "x.example")
	iss.DropUser(alice.UserID)
	if n := iss.held(da); n != 0 {
		t.Errorf("%d of alice's tokens kept after the purge", n)
	}
	if n := iss.held(db); n != 1 {
		t.Errorf("bob's token dropped too (%d held)", n)
	}
	if a2, _ := iss.Assertion(da, "x.example"); a2[0] == a1[0] {
		t.Error("the purged token was served again")
	}
	if b2, _ := iss.Assertion(db, "x.example"); b2[0] != b1[0] {
		t.Error("bob's token re-signed")
	}
}

func TestSweepAndBound(t *testing.T) {
	keys := mustKeys(t, setOf(t, jwkOf(t, ecKey(t, elliptic.P256()))))
	clock := newClock()
	iss, err := New(t.Context(), Config{Keys: keys, TTL: time.Minute, Clock: clock, MaxDecisions: 3}, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var ds []*resolver.Decision
	for range 3 {
		d := resolver.Allow(alice, time.Time{})
		ds = append(ds, d)
		iss.Assertion(d, "x.example")
	}
	if iss.byDecision.n.Load() != 3 {
		t.Fatalf("size %d", iss.byDecision.n.Load())
	}
	// A fourth decision over the bound: everything kept is forgotten first.
	iss.Assertion(resolver.Allow(alice, time.Time{}), "x.example")
	if iss.byDecision.n.Load() != 1 || iss.held(ds[0]) != 0 {
		t.Errorf("size %d after the bound", iss.byDecision.n.Load())
	}
	clock.Advance(30 * time.Second)
	fresh := resolver.Allow(bob, time.Time{})
	iss.Assertion(fresh, "x.example")
	clock.Advance(20 * time.Second) // the older one is due, fresh is not
	iss.sweep(clock.Now().UnixNano())
	if iss.byDecision.n.Load() != 1 || iss.held(fresh) != 1 {
		t.Errorf("size %d, fresh held %d after the sweep", iss.byDecision.n.Load(), iss.held(fresh))
	}
}

// TestSameContentSameToken: a new decision saying the same (reloaded from
// Redis, or an allow served stale) takes over the token; one saying
// something else, or after a purge, gets its own.
func TestSameContentSameToken(t *testing.T) {
	keys := mustKeys(t, setOf(t, jwkOf(t, ecKey(t, elliptic.P256()))))
	clock := newClock()
	iss := newIssuer(t, keys, 5*time.Minute, clock)
	first, _ := iss.Assertion(resolver.Allow(alice, time.Time{}), "app.example")
	reloaded := resolver.Allow(alice, time.Time{})
	if v, _ := iss.Assertion(reloaded, "app.example"); v[0] != first[0] {
		t.Error("a reloaded decision signed again")
	}
	stale := *reloaded
	stale.Stale = true
	if v, _ := iss.Assertion(&stale, "app.example"); v[0] != first[0] {
		t.Error("a stale copy signed again")
	}
	if got := testutil.ToFloat64(iss.signed); got != 1 {
		t.Errorf("%v signed, want 1", got)
	}
	changed := alice
	changed.Roles = []string{"admin"}
	capped := resolver.Allow(alice, clock.Now().Add(time.Minute))
	for _, d := range []*resolver.Decision{resolver.Allow(changed, time.Time{}), capped} {
		if v, _ := iss.Assertion(d, "app.example"); v[0] == first[0] {
			t.Errorf("%+v: took over a token saying something else", d.Identity)
		}
	}
	// Due for refresh: not taken over either.
	clock.Advance(4*time.Minute + 30*time.Second)
	if v, _ := iss.Assertion(resolver.Allow(alice, time.Time{}), "app.example"); v[0] == first[0] {
		t.Error("took over a token due for refresh")
	}
	second, _ := iss.Assertion(resolver.Allow(alice, time.Time{}), "app.example")
	// After a purge of the user, or of any credentials: signed anew.
	iss.DropUser(alice.UserID)
	third, _ := iss.Assertion(resolver.Allow(alice, time.Time{}), "app.example")
	if third[0] == second[0] {
		t.Error("a token taken over after the user's purge")
	}
	iss.Purged()
	if v, _ := iss.Assertion(resolver.Allow(alice, time.Time{}), "app.example"); v[0] == third[0] {
		t.Error("a token taken over after a credentials purge")
	}
}

func TestConcurrentRequestsSignOnce(t *testing.T) {
	keys := mustKeys(t, setOf(t, jwkOf(t, ecKey(t, elliptic.P256()))))
	iss := newIssuer(t, keys, 5*time.Minute, newClock())
	d := resolver.Allow(alice, time.Time{})
	var wg sync.WaitGroup
	got := make([]string, 16)
	for n := range got {
		wg.Go(func() {
			v, err := iss.Assertion(d, "app.example")
			if err != nil || v == nil {
				t.Error(v, err)
				return
			}
			got[n] = v[0]
		})
	}
	wg.Wait()
	for _, g := range got {
		if g != got[0] {
			t.Fatal("different tokens for one decision and audience")
		}
	}
	if n := testutil.ToFloat64(iss.signed); n != 1 {
		t.Errorf("signed %v times, want 1", n)
	}
}

func TestAcceptedAlgorithms(t *testing.T) {
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsa2048 := rsaKey(t, 2048)
	for _, tc := range []struct {
		name string
		key  jwk.Key
		alg  string
	}{
		{"ES256 implied by P-256", jwkOf(t, ecKey(t, elliptic.P256())), "ES256"},
		{"ES384", jwkOf(t, ecKey(t, elliptic.P384()), "alg", "ES384"), "ES384"},
		{"ES512 implied by P-521", jwkOf(t, ecKey(t, elliptic.P521())), "ES512"},
		{"EdDSA", jwkOf(t, edPriv), "EdDSA"},
		{"RS256 implied by RSA", jwkOf(t, rsa2048), "RS256"},
		{"PS256", jwkOf(t, rsa2048, "alg", "PS256"), "PS256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys := mustKeys(t, setOf(t, tc.key))
			if keys.Algorithm() != tc.alg {
				t.Fatalf("alg %s, want %s", keys.Algorithm(), tc.alg)
			}
			clock := newClock()
			v, err := newIssuer(t, keys, time.Minute, clock).Assertion(resolver.Allow(alice, time.Time{}), "app.example")
			if err != nil {
				t.Fatal(err)
			}
			verified(t, keys.PublicJWKS(), v[0], clock.Now(), "app.example")
			var set struct{ Keys []map[string]any }
			_ = json.Unmarshal(keys.PublicJWKS(), &set)
			if set.Keys[0]["alg"] != tc.alg || set.Keys[0]["use"] != "sig" {
				t.Errorf("published %v", set.Keys[0])
			}
		})
	}
}

func TestKeyFileErrors(t *testing.T) {
	p256 := ecKey(t, elliptic.P256())
	pub, err := jwkOf(t, p256).PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	hmacKey, err := jwk.Import([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"not JSON", []byte("-----BEGIN EC PRIVATE KEY-----"), "not a JWK Set"},
		{"empty set", []byte(`{"keys":[]}`), "no keys"},
		{"no private key", setOf(t, pub), "no private part"},
		{"symmetric key", setOf(t, hmacKey), "unsupported key"},
		{"alg not the key's", setOf(t, jwkOf(t, ecKey(t, elliptic.P256()), "alg", "RS256")), `unsupported "alg" "RS256"`},
		{"HS256 on an EC key", setOf(t, jwkOf(t, ecKey(t, elliptic.P256()), "alg", "HS256")), `unsupported "alg"`},
		{"short RSA", shortRSA(t), "rsa modulus too small"},
		{"encryption key", setOf(t, jwkOf(t, ecKey(t, elliptic.P256()), "use", "enc")), `"use" is "enc"`},
		{"duplicate kid", setOf(t, jwkOf(t, p256, "kid", "a"), jwkOf(t, ecKey(t, elliptic.P256()), "kid", "a")), `keys 1 and 2 have the same kid "a"`},
		{"the same key twice, no kid", setOf(t, jwkOf(t, p256), jwkOf(t, p256)), "have the same kid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseKeys(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("a multi-line error: %q", err)
			}
			d, derr := p256.Bytes()
			if derr != nil {
				t.Fatal(derr)
			}
			for _, secret := range []string{`"d"`, base64.RawURLEncoding.EncodeToString(d)} {
				if strings.Contains(err.Error(), secret) && tc.name != "no private key" {
					t.Errorf("the error quotes key material: %v", err)
				}
			}
		})
	}
	if _, err := LoadKeys(t.TempDir() + "/missing.json"); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
}

// shortRSA is a 1024-bit RSA JWK, written by hand: jwx refuses to import one.
func shortRSA(t *testing.T) []byte {
	k := rsaKey(t, 1024)
	b64 := func(n *big.Int) string { return base64.RawURLEncoding.EncodeToString(n.Bytes()) }
	b, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "n": b64(k.N), "e": "AQAB", "d": b64(k.D), "p": b64(k.Primes[0]), "q": b64(k.Primes[1]),
	}}})
	return b
}

func TestPublicJWKSHasNoPrivateParts(t *testing.T) {
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	keys := mustKeys(t, setOf(t, jwkOf(t, ecKey(t, elliptic.P256())), jwkOf(t, rsaKey(t, 2048)), jwkOf(t, edPriv)))
	var set struct{ Keys []map[string]any }
	if err := json.Unmarshal(keys.PublicJWKS(), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 3 {
		t.Fatalf("%d keys published, want 3", len(set.Keys))
	}
	for _, k := range set.Keys {
		for _, m := range []string{"d", "p", "q", "dp", "dq", "qi", "oth"} {
			if _, ok := k[m]; ok {
				t.Errorf("published key has %q", m)
			}
		}
		if kid, _ := k["kid"].(string); len(kid) != 43 {
			t.Errorf("kid %q, want the SHA-256 thumbprint (43 characters)", kid)
		}
	}
}

func TestGenerateSet(t *testing.T) {
	first, err := GenerateSet(nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := mustKeys(t, first)
	if keys.Algorithm() != "ES256" {
		t.Errorf("alg %s", keys.Algorithm())
	}
	set, err := jwk.Parse(first)
	if err != nil || set.Len() != 1 {
		t.Fatal(set, err)
	}
	k, _ := set.Key(0)
	var raw ecdsa.PrivateKey
	if err := jwk.Export(k, &raw); err != nil || raw.Curve != elliptic.P256() {
		t.Fatalf("not a P-256 private key: %v", err)
	}
	tp, _ := k.Thumbprint(crypto.SHA256)
	if kid, _ := k.KeyID(); kid != base64.RawURLEncoding.EncodeToString(tp) {
		t.Errorf("kid %q is not the thumbprint", kid)
	}
	// With the current file: its keys first, still signing; the new one last.
	next, err := GenerateSet(first)
	if err != nil {
		t.Fatal(err)
	}
	nk := mustKeys(t, next)
	if nk.KeyID() != keys.KeyID() || len(nk.kids) != 2 || nk.kids[1] == keys.KeyID() || !nk.private[1] {
		t.Errorf("rotation set: signing %q, kids %v", nk.KeyID(), nk.kids)
	}
	if _, err := GenerateSet([]byte(`{"keys":[]}`)); err == nil {
		t.Error("a broken current file was extended")
	}
}
