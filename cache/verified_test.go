package cache

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgear/authgear-forwardauth/internal/clocktest"
	"github.com/authgear/authgear-forwardauth/resolver"
)

func newTestVerified(t *testing.T, maxBytes uint64, decide func(resolver.Request) (*resolver.Decision, error)) (*Verified, *stubResolver, *clocktest.Clock) {
	t.Helper()
	stub := &stubResolver{decide: decide}
	clock := clocktest.New(time.Now())
	v := NewVerified(maxBytes, Config{TTL: time.Minute, NegativeTTL: 5 * time.Second, FetchTimeout: time.Second, Clock: clock},
		stub, prometheus.NewRegistry())
	return v, stub, clock
}

// TestVerifiedKeysByTheWholeToken: tokens alike but for one byte, at either
// end, are verified and kept apart.
func TestVerifiedKeysByTheWholeToken(t *testing.T) {
	v, stub, _ := newTestVerified(t, 1<<20, allowEveryone)
	base := strings.Repeat("x", 1000)
	tokens := []string{base + "a", base + "b", "a" + base, "b" + base, base}
	for _, tok := range tokens {
		d, err := v.Decide(context.Background(), resolver.Request{Credentials: resolver.Credentials{Bearer: tok}})
		if err != nil || d.Identity.UserID != "user-"+tok {
			t.Fatalf("Decide = %v, %v", d, err)
		}
	}
	for _, tok := range tokens {
		d, ok := v.Lookup(tok)
		if !ok || d.Identity.UserID != "user-"+tok {
			t.Fatalf("Lookup of one token gave another's answer: %v", d)
		}
	}
	if n := stub.calls.Load(); n != int64(len(tokens)) {
		t.Fatalf("verifications = %d, want %d", n, len(tokens))
	}
	if _, ok := v.Lookup(base + "c"); ok {
		t.Fatal("a token never verified was found")
	}
}

// TestVerifiedNeverPastExp: an allow is gone at the token's exp, even with a
// longer TTL.
func TestVerifiedNeverPastExp(t *testing.T) {
	clock := clocktest.New(time.Now())
	exp := clock.Now().Add(10 * time.Second)
	stub := &stubResolver{decide: func(resolver.Request) (*resolver.Decision, error) {
		return resolver.Allow(resolver.Identity{UserID: "u"}, exp), nil
	}}
	v := NewVerified(1<<20, Config{TTL: time.Hour, NegativeTTL: time.Second, FetchTimeout: time.Second, Clock: clock}, stub, prometheus.NewRegistry())
	_, _ = v.Decide(context.Background(), resolver.Request{Credentials: resolver.Credentials{Bearer: "t"}})
	clock.Advance(10*time.Second - time.Millisecond)
	if _, ok := v.Lookup("t"); !ok {
		t.Fatal("gone before exp")
	}
	clock.Advance(time.Millisecond)
	if _, ok := v.Lookup("t"); ok {
		t.Fatal("served at exp")
	}
}

// TestVerifiedBoundedInBytes: however long the tokens, the tier holds about
// maxBytes of them.
func TestVerifiedBoundedInBytes(t *testing.T) {
	const maxBytes = 256 << 10
	v, _, _ := newTestVerified(t, maxBytes, allowEveryone)
	for i := range 2000 {
		tok := strings.Repeat(string(rune('a'+i%26)), 8<<10) + string(rune(i))
		_, _ = v.Decide(context.Background(), resolver.Request{Credentials: resolver.Credentials{Bearer: tok}})
	}
	v.c.CleanUp()
	if w := v.c.WeightedSize(); w > maxBytes {
		t.Fatalf("weighted size %d, want at most %d", w, maxBytes)
	}
	if n := v.Len(); n > maxBytes/(8<<10) {
		t.Fatalf("%d tokens of 8 KiB held in %d bytes", n, maxBytes)
	}
}

// TestVerifiedPurges: by token, by user, and a verification in flight during
// a purge does not write its answer back.
func TestVerifiedPurges(t *testing.T) {
	v, stub, _ := newTestVerified(t, 1<<20, allowEveryone)
	ctx := context.Background()
	req := func(tok string) resolver.Request {
		return resolver.Request{Credentials: resolver.Credentials{Bearer: tok}}
	}
	_, _ = v.Decide(ctx, req("a"))
	_, _ = v.Decide(ctx, req("b"))
	_ = v.PurgeToken(ctx, "a")
	if _, ok := v.Lookup("a"); ok {
		t.Fatal("purged token still held")
	}
	_ = v.PurgeUser(ctx, "user-b")
	if _, ok := v.Lookup("b"); ok {
		t.Fatal("purged user's token still held")
	}
	entered, release := stub.hold()
	done := make(chan struct{})
	go func() { _, _ = v.Decide(ctx, req("c")); close(done) }()
	<-entered
	_ = v.PurgeUser(ctx, "user-c")
	release()
	<-done
	if _, ok := v.Lookup("c"); ok {
		t.Fatal("a verification in flight during a purge wrote its answer back")
	}
}
