package cache

import (
	"context"
	"testing"
	"time"

	"github.com/authgear/authgear-forwardauth/internal/clocktest"
	"github.com/authgear/authgear-forwardauth/resolver"
)

func jwtDecision(user, jti string, iat time.Time) *resolver.Decision {
	d := resolver.Allow(resolver.Identity{UserID: user}, iat.Add(30*time.Minute))
	d.TokenID, d.IssuedAt = jti, iat
	return d
}

func TestDenyUserBlocksTokensIssuedBeforeOnly(t *testing.T) {
	clock := clocktest.New(time.Now())
	d := NewDenyList(time.Hour, nil, clock, discard)
	before := jwtDecision("u1", "j1", clock.Now().Add(-time.Minute))
	other := jwtDecision("u2", "j2", clock.Now().Add(-time.Minute))
	if d.Blocks(before) {
		t.Fatal("blocked before any revocation")
	}
	if err := d.DenyUser(context.Background(), "u1"); err != nil {
		t.Fatal(err)
	}
	if !d.Blocks(before) {
		t.Fatal("a token issued before the revocation still passes")
	}
	if d.Blocks(other) {
		t.Fatal("another user's token was blocked")
	}
	clock.Advance(2 * time.Second)
	if after := jwtDecision("u1", "j3", clock.Now()); d.Blocks(after) {
		t.Fatal("a token issued after the revocation (the user signed in again) was blocked")
	}
	if noIat := jwtDecision("u1", "j4", time.Time{}); !d.Blocks(noIat) {
		t.Fatal("a token without iat escaped the user's revocation")
	}
	clock.Advance(time.Hour)
	if d.Blocks(before) {
		t.Fatal("the entry outlived the longest token it could block")
	}
}

func TestDenyTokenBlocksOneJTIUntilItsExp(t *testing.T) {
	clock := clocktest.New(time.Now())
	d := NewDenyList(time.Hour, nil, clock, discard)
	tok := jwtDecision("u1", "j1", clock.Now())
	sibling := jwtDecision("u1", "j2", clock.Now())
	if err := d.DenyToken(context.Background(), "j1", clock.Now().Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if !d.Blocks(tok) || d.Blocks(sibling) {
		t.Fatalf("blocks j1 = %v (want true), j2 = %v (want false)", d.Blocks(tok), d.Blocks(sibling))
	}
	clock.Advance(10 * time.Minute)
	if d.Blocks(tok) {
		t.Fatal("the entry outlived the token")
	}
	_ = d.DenyToken(context.Background(), "old", clock.Now().Add(-time.Second))
	if _, ok := d.snap.Load().jtis["old"]; ok {
		t.Fatal("an expired token was added")
	}
}

func TestDenyListIsSharedWithEveryReplica(t *testing.T) {
	tier, _, _ := newRedisTier(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := NewDenyList(time.Hour, tier, nil, discard)
	b := NewDenyList(time.Hour, tier, nil, discard)
	go Listen(ctx, tier, a)
	go Listen(ctx, tier, b)
	eventually(t, "both replicas subscribed", func() bool {
		n, _ := tier.client.PubSubNumSub(ctx, tier.channel()).Result()
		return n[tier.channel()] == 2
	})
	issued := time.Now().Add(-time.Minute)
	if err := a.DenyUser(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if err := a.DenyToken(ctx, "jti-9", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b blocks the revoked user and token", func() bool {
		return b.Blocks(jwtDecision("u1", "x", issued)) && b.Blocks(jwtDecision("u2", "jti-9", issued))
	})
	// A replica started later reads the list when it subscribes.
	c := NewDenyList(time.Hour, tier, nil, discard)
	go Listen(ctx, tier, c)
	eventually(t, "a new replica loads the deny list", func() bool {
		return c.Blocks(jwtDecision("u1", "x", issued)) && c.Blocks(jwtDecision("u2", "jti-9", issued))
	})
	if c.Blocks(jwtDecision("u2", "other", issued)) {
		t.Fatal("the new replica blocks an unrelated token")
	}
}
