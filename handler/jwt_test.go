package handler

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/authgear/authgear-forwardauth/internal/clocktest"
	"github.com/authgear/authgear-forwardauth/resolver"
	"github.com/authgear/authgear-forwardauth/resolver/resolvertest"
)

func bearerHeader(tok string) http.Header { return hdr("Authorization", "Bearer "+tok) }

func TestJWTLocalAllowsWithoutAResolverCall(t *testing.T) {
	s := newStack(t, stackOptions{jwt: JWTLocal})
	tok := s.authgear.IssueJWT(alice.UserID)
	for range 3 {
		if w := s.do("GET", "/auth", bearerHeader(tok)); w.Code != 200 {
			t.Fatalf("status %d", w.Code)
		}
	}
	if n := s.authgear.Calls(); n != 0 {
		t.Fatalf("resolver calls = %d, want 0", n)
	}
}

func TestJWTHeadersAreTheResolverPathsByteForByte(t *testing.T) {
	local := newStack(t, stackOptions{jwt: JWTLocal})
	viaJWT := local.do("GET", "/auth", bearerHeader(local.authgear.IssueJWT(alice.UserID)))
	viaResolver := newStack(t, stackOptions{}).do("GET", "/auth", bearerHeader(aliceToken))
	if viaJWT.Code != 200 || viaResolver.Code != 200 {
		t.Fatalf("statuses %d and %d", viaJWT.Code, viaResolver.Code)
	}
	for _, name := range []string{"X-Authgear-User-Id", "X-Authgear-User-Anonymous", "X-Authgear-User-Verified",
		"X-Authgear-User-Can-Reauthenticate", "X-Authgear-User-Roles", "X-Authgear-Session-Amr",
		"X-Authgear-Session-Authenticated-At", "X-Authgear-Session-Valid"} {
		a, b := viaJWT.Header().Values(name), viaResolver.Header().Values(name)
		if len(a) != 1 || len(b) != 1 || a[0] != b[0] {
			t.Errorf("%s: JWT path %q, resolver path %q", name, a, b)
		}
	}
}

func TestJWTInvalidIs401WithoutAResolverCall(t *testing.T) {
	for _, mode := range []JWTMode{JWTLocal, JWTHybrid} {
		s := newStack(t, stackOptions{jwt: mode})
		bad := map[string]string{
			"expired":         s.authgear.IssueJWT(alice.UserID, resolvertest.WithClaim("exp", time.Now().Add(-time.Hour).Unix())),
			"expired 3 s ago": s.authgear.IssueJWT(alice.UserID, resolvertest.WithClaim("exp", time.Now().Add(-3*time.Second).Unix())),
			"wrong issuer":    s.authgear.IssueJWT(alice.UserID, resolvertest.WithClaim("iss", "https://evil.example")),
			"bad signature":   s.authgear.IssueJWT(alice.UserID, resolvertest.WithSignature("c2lnbmF0dXJl")),
			"alg none":        s.authgear.IssueJWT(alice.UserID, resolvertest.Unsigned()),
		}
		for name, tok := range bad {
			w := s.do("GET", "/auth", bearerHeader(tok))
			if w.Code != 401 || w.Header().Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
				t.Errorf("mode %d, %s: got %d %q", mode, name, w.Code, w.Header().Get("WWW-Authenticate"))
			}
		}
		if n := s.authgear.Calls(); n != 0 {
			t.Errorf("mode %d: forged or expired tokens cost %d resolver calls, want 0", mode, n)
		}
	}
}

func TestJWTInvalidWithAValidCookieAsksAuthgear(t *testing.T) {
	s := newStack(t, stackOptions{jwt: JWTLocal})
	expired := s.authgear.IssueJWT(bob.UserID, resolvertest.WithClaim("exp", time.Now().Add(-time.Hour).Unix()))
	h := bearerHeader(expired)
	h.Set("Cookie", "session="+aliceIDP)
	w := s.do("GET", "/auth", h)
	if w.Code != 200 || w.Header().Get("X-Authgear-User-Id") != alice.UserID {
		t.Fatalf("got %d user %q, want alice through her cookie", w.Code, w.Header().Get("X-Authgear-User-Id"))
	}
}

func TestJWTOpaqueTokensStillUseTheResolver(t *testing.T) {
	s := newStack(t, stackOptions{jwt: JWTLocal})
	if w := s.do("GET", "/auth", bearerHeader(aliceToken)); w.Code != 200 || s.authgear.Calls() != 1 {
		t.Fatalf("opaque token: status %d with %d resolver calls, want 200 with 1", w.Code, s.authgear.Calls())
	}
}

func TestJWTRevokedUserIsBlockedUntilTheySignInAgain(t *testing.T) {
	s := newStack(t, stackOptions{jwt: JWTLocal})
	old := s.authgear.IssueJWT(alice.UserID, resolvertest.WithClaim("iat", time.Now().Add(-time.Minute).Unix()))
	if w := s.do("GET", "/auth", bearerHeader(old)); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	if err := s.revoker.RevokeUser(context.Background(), alice.UserID); err != nil {
		t.Fatal(err)
	}
	if w := s.do("GET", "/auth", bearerHeader(old)); w.Code != 401 {
		t.Fatalf("a revoked user's cached token: status %d, want 401", w.Code)
	}
	fresh := s.authgear.IssueJWT(alice.UserID, resolvertest.WithClaim("iat", time.Now().Add(2*time.Second).Unix()))
	if w := s.do("GET", "/auth", bearerHeader(fresh)); w.Code != 200 {
		t.Fatalf("a token issued after the revocation: status %d, want 200", w.Code)
	}
	// A plain purge (a profile update) does not block tokens.
	other := s.authgear.IssueJWT(bob.UserID)
	_ = s.revoker.PurgeUser(context.Background(), bob.UserID)
	if w := s.do("GET", "/auth", bearerHeader(other)); w.Code != 200 {
		t.Fatalf("after a purge that revokes nothing: status %d, want 200", w.Code)
	}
}

func TestJWTPurgedCredentialIsBlocked(t *testing.T) {
	s := newStack(t, stackOptions{jwt: JWTLocal})
	tok := s.authgear.IssueJWT(alice.UserID)
	sibling := s.authgear.IssueJWT(alice.UserID)
	s.do("GET", "/auth", bearerHeader(tok))
	if err := s.revoker.PurgeCredentials(context.Background(), credsOf(t, bearerHeader(tok))); err != nil {
		t.Fatal(err)
	}
	if w := s.do("GET", "/auth", bearerHeader(tok)); w.Code != 401 {
		t.Fatalf("purged token: status %d, want 401", w.Code)
	}
	if w := s.do("GET", "/auth", bearerHeader(sibling)); w.Code != 200 {
		t.Fatalf("another token of the same user: status %d, want 200", w.Code)
	}
}

func TestJWTHybridConfirmsWithTheResolver(t *testing.T) {
	s := newStack(t, stackOptions{jwt: JWTHybrid})
	tok := s.authgear.IssueJWT(alice.UserID)
	for range 3 {
		if w := s.do("GET", "/auth", bearerHeader(tok)); w.Code != 200 {
			t.Fatalf("status %d", w.Code)
		}
	}
	if n := s.authgear.Calls(); n != 1 {
		t.Fatalf("resolver calls = %d, want 1 (confirmed once, then cached)", n)
	}
	// A grant revoked in Authgear (sign-out: no webhook) passes a local check
	// but not the resolver.
	revoked := s.authgear.IssueJWT(alice.UserID)
	s.authgear.RevokeJWT(resolvertest.JTI(revoked))
	if w := s.do("GET", "/auth", bearerHeader(revoked)); w.Code != 401 {
		t.Fatalf("revoked grant in hybrid mode: status %d, want 401", w.Code)
	}
	local := newStack(t, stackOptions{jwt: JWTLocal})
	revoked = local.authgear.IssueJWT(alice.UserID)
	local.authgear.RevokeJWT(resolvertest.JTI(revoked))
	if w := local.do("GET", "/auth", bearerHeader(revoked)); w.Code != 200 {
		t.Fatalf("revoked grant in local mode: status %d; the README says it passes until it expires", w.Code)
	}
}

func TestJWTKeysUnavailableFallsBackToTheResolver(t *testing.T) {
	s := newStack(t, stackOptions{jwt: JWTLocal, setup: func(ag *resolvertest.Server) {
		ag.SetJWKSFailure(true)
		ag.SetDiscoveryFailure(true)
	}})
	tok := s.authgear.IssueJWT(alice.UserID)
	w := s.do("GET", "/auth", bearerHeader(tok))
	if w.Code != 200 || w.Header().Get("X-Authgear-User-Id") != alice.UserID {
		t.Fatalf("status %d, want 200 from the resolver while the keys cannot be fetched", w.Code)
	}
	if n := s.authgear.Calls(); n != 1 {
		t.Fatalf("resolver calls = %d, want 1", n)
	}
}

func credsOf(t *testing.T, h http.Header) resolver.Credentials {
	t.Helper()
	c, _, _, err := readCredentials(h, newCookieNames(""), &resolver.Shapes{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestJWTNeverServedPastExp: an allow never outlives the token's exp, in any
// mode, from any cache: once the clock passes exp by a few seconds, local
// verification refuses the token (no resolver call) and the resolver path's
// cache asks Authgear again rather than answer from memory.
func TestJWTNeverServedPastExp(t *testing.T) {
	for _, mode := range []JWTMode{JWTLocal, JWTHybrid, JWTOff} {
		clock := clocktest.New(time.Now())
		s := newStack(t, stackOptions{jwt: mode, clock: clock})
		tok := s.authgear.IssueJWT(alice.UserID, resolvertest.WithClaim("exp", clock.Now().Add(20*time.Second).Unix())) // CACHE_TTL is a minute
		for range 2 {
			if w := s.do("GET", "/auth", bearerHeader(tok)); w.Code != 200 {
				t.Fatalf("mode %d, a fresh token: status %d", mode, w.Code)
			}
		}
		calls := s.authgear.Calls()
		clock.Advance(23 * time.Second)
		w := s.do("GET", "/auth", bearerHeader(tok))
		switch mode {
		case JWTOff:
			// The fake Authgear runs on the real clock and still accepts it;
			// what matters is that the cache did not answer.
			if n := s.authgear.Calls(); n != calls+1 {
				t.Errorf("mode off: %d resolver calls after exp, want %d: the cache served a token past its exp", n, calls+1)
			}
		default:
			if w.Code != 401 || w.Header().Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
				t.Errorf("mode %d: 3 s past exp, status %d, want 401 invalid_token", mode, w.Code)
			}
			if n := s.authgear.Calls(); n != calls {
				t.Errorf("mode %d: %d resolver calls after exp, want %d", mode, n, calls)
			}
		}
	}
}

// TestJWTVerifiedCacheMatchesWholeTokens: the in-process cache of verified
// tokens keys by the whole token, so a token differing by one character from
// a cached one is checked on its own.
func TestJWTVerifiedCacheMatchesWholeTokens(t *testing.T) {
	s := newStack(t, stackOptions{jwt: JWTLocal})
	tok := s.authgear.IssueJWT(alice.UserID)
	if w := s.do("GET", "/auth", bearerHeader(tok)); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	last := tok[len(tok)-2]
	for _, forged := range []string{
		tok[:len(tok)-2] + string(last^1) + tok[len(tok)-1:], // one bit of the signature
		tok + "A",
		tok[:len(tok)-1],
	} {
		if w := s.do("GET", "/auth", bearerHeader(forged)); w.Code != 401 {
			t.Errorf("a token one character off a cached one: status %d, want 401", w.Code)
		}
	}
	if w := s.do("GET", "/auth", bearerHeader(tok)); w.Code != 200 {
		t.Fatalf("the cached token afterwards: status %d", w.Code)
	}
}
