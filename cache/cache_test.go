package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgear/authgear-forwardauth/cache/redistest"
	"github.com/authgear/authgear-forwardauth/internal/clocktest"
	"github.com/authgear/authgear-forwardauth/resolver"
)

// stubResolver answers with decide, counting calls; gate, when set, holds
// every call until it is closed.
type stubResolver struct {
	calls   atomic.Int64
	decide  func(resolver.Request) (*resolver.Decision, error)
	mu      sync.Mutex
	gate    chan struct{}
	entered chan struct{}
}

func (s *stubResolver) Resolve(ctx context.Context, req resolver.Request) (*resolver.Decision, error) {
	s.calls.Add(1)
	s.mu.Lock()
	gate, entered := s.gate, s.entered
	s.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if gate != nil {
		<-gate
	}
	return s.decide(req)
}

// hold makes the next calls wait for the returned release.
func (s *stubResolver) hold() (entered <-chan struct{}, release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate, s.entered = make(chan struct{}), make(chan struct{}, 100)
	gate := s.gate
	return s.entered, func() { close(gate) }
}

func allowEveryone(req resolver.Request) (*resolver.Decision, error) {
	return allowFor("user-" + req.Bearer), nil
}

type testCache struct {
	*Cache
	stub  *stubResolver
	clock *clocktest.Clock
	reg   *prometheus.Registry
}

const (
	testTTL    = time.Minute
	testNegTTL = 5 * time.Second
)

func newTestCache(t *testing.T, shared Tier, localTTL time.Duration, opts ...func(*Config)) *testCache {
	t.Helper()
	stub := &stubResolver{decide: allowEveryone}
	clock := clocktest.New(time.Now())
	reg := prometheus.NewRegistry()
	cfg := Config{TTL: testTTL, NegativeTTL: testNegTTL, FetchTimeout: 5 * time.Second, Clock: clock}
	for _, o := range opts {
		o(&cfg)
	}
	c := New(cfg,
		NewKeyer([]byte("secret")), NewLocal(1000, localTTL, clock), shared, stub, discard, reg)
	return &testCache{Cache: c, stub: stub, clock: clock, reg: reg}
}

func bearer(tok string) resolver.Request {
	return resolver.Request{Credentials: resolver.Credentials{Bearer: tok}}
}

func (tc *testCache) mustDecide(t *testing.T, tok string) *resolver.Decision {
	t.Helper()
	d, err := tc.Decide(context.Background(), bearer(tok))
	if err != nil {
		t.Fatalf("Decide(%s): %v", tok, err)
	}
	return d
}

func TestLocalHitMakesNoResolverCall(t *testing.T) {
	tc := newTestCache(t, nil, testTTL)
	tc.mustDecide(t, "a")
	tc.mustDecide(t, "a")
	tc.mustDecide(t, "a")
	if n := tc.stub.calls.Load(); n != 1 {
		t.Fatalf("resolver calls = %d, want 1", n)
	}
	if got := testutil.ToFloat64(tc.hitsLocal); got != 2 {
		t.Fatalf("local hits = %v, want 2", got)
	}
}

func TestRedisHitMakesNoResolverCall(t *testing.T) {
	redis, _, _ := newRedisTier(t)
	first := newTestCache(t, redis, 5*time.Second)
	second := newTestCache(t, redis, 5*time.Second) // another replica: empty in-process tier
	first.mustDecide(t, "a")
	d := second.mustDecide(t, "a")
	if !d.Allow || d.Identity.UserID != "user-a" {
		t.Fatalf("second replica got %+v", d)
	}
	if n := second.stub.calls.Load(); n != 0 {
		t.Fatalf("second replica called the resolver %d times, want 0 (Redis hit)", n)
	}
	if got := testutil.ToFloat64(second.hitsShared); got != 1 {
		t.Fatalf("redis hits = %v, want 1", got)
	}
}

func TestConcurrentMissesMakeOneResolverCall(t *testing.T) {
	eachTier(t, func(t *testing.T, shared Tier) {
		tc := newTestCache(t, shared, testTTL)
		entered, release := tc.stub.hold()
		var wg sync.WaitGroup
		errs := make(chan error, 200)
		for range 200 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d, err := tc.Decide(context.Background(), bearer("new-token"))
				if err == nil && !d.Allow {
					err = errors.New("denied")
				}
				errs <- err
			}()
		}
		<-entered
		release()
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n := tc.stub.calls.Load(); n != 1 {
			t.Fatalf("200 concurrent requests made %d resolver calls, want 1", n)
		}
	})
}

func TestDenyIsCachedForNegativeTTLOnly(t *testing.T) {
	tc := newTestCache(t, nil, testTTL)
	tc.stub.decide = func(resolver.Request) (*resolver.Decision, error) { return resolver.Deny(), nil }
	if d := tc.mustDecide(t, "bad"); d.Allow {
		t.Fatal("allowed")
	}
	tc.clock.Advance(testNegTTL - time.Millisecond)
	tc.mustDecide(t, "bad")
	if n := tc.stub.calls.Load(); n != 1 {
		t.Fatalf("calls within CACHE_NEGATIVE_TTL = %d, want 1", n)
	}
	tc.clock.Advance(2 * time.Millisecond)
	tc.mustDecide(t, "bad")
	if n := tc.stub.calls.Load(); n != 2 {
		t.Fatalf("calls after CACHE_NEGATIVE_TTL = %d, want 2", n)
	}
}

func TestAllowIsCachedForTTLAndNoLongerThanItsExpiry(t *testing.T) {
	tc := newTestCache(t, nil, time.Hour)
	tc.mustDecide(t, "a")
	tc.clock.Advance(testTTL - time.Millisecond)
	tc.mustDecide(t, "a")
	if n := tc.stub.calls.Load(); n != 1 {
		t.Fatalf("calls within CACHE_TTL = %d, want 1", n)
	}
	tc.clock.Advance(2 * time.Millisecond)
	tc.mustDecide(t, "a")
	if n := tc.stub.calls.Load(); n != 2 {
		t.Fatalf("calls after CACHE_TTL = %d, want 2", n)
	}

	// A JWT expiring before CACHE_TTL is dropped at its exp.
	exp := tc.clock.Now().Add(10 * time.Second)
	tc.stub.decide = func(resolver.Request) (*resolver.Decision, error) {
		return resolver.Allow(resolver.Identity{UserID: "jwt-user"}, exp), nil
	}
	tc.mustDecide(t, "jwt")
	tc.clock.Advance(10*time.Second + time.Millisecond)
	tc.mustDecide(t, "jwt")
	if n := tc.stub.calls.Load(); n != 4 {
		t.Fatalf("calls = %d, want 4: the allow outlived its token's exp", n)
	}
}

func TestResolverFailureIsNotCached(t *testing.T) {
	tc := newTestCache(t, nil, testTTL)
	tc.stub.decide = func(resolver.Request) (*resolver.Decision, error) { return nil, resolver.ErrUnavailable }
	if _, err := tc.Decide(context.Background(), bearer("a")); !errors.Is(err, resolver.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	tc.stub.decide = allowEveryone
	if d := tc.mustDecide(t, "a"); !d.Allow {
		t.Fatal("a failure was cached as a deny")
	}
	if n := tc.stub.calls.Load(); n != 2 {
		t.Fatalf("calls = %d, want 2", n)
	}
}

func TestRedisStoppedMidTestStillAnswers(t *testing.T) {
	srv := redistest.Start(t)
	client := srv.Client()
	tier := NewRedis(client, RedisConfig{Prefix: "t:", Timeout: 100 * time.Millisecond, RetryAfter: 0, TombstoneTTL: time.Second, MaxTTL: time.Minute}, discard)
	tc := newTestCache(t, tier, testTTL)
	tc.mustDecide(t, "a")
	srv.Stop()
	// Already cached in process: still served. New token: from the resolver.
	if d := tc.mustDecide(t, "a"); !d.Allow || d.Identity.UserID != "user-a" {
		t.Fatalf("cached answer wrong with Redis down: %+v", d)
	}
	tc.stub.decide = func(req resolver.Request) (*resolver.Decision, error) {
		if req.Bearer == "bad" {
			return resolver.Deny(), nil
		}
		return allowEveryone(req)
	}
	if d := tc.mustDecide(t, "b"); !d.Allow || d.Identity.UserID != "user-b" {
		t.Fatalf("new token wrong with Redis down: %+v", d)
	}
	if d := tc.mustDecide(t, "bad"); d.Allow {
		t.Fatal("bad token allowed with Redis down")
	}
	if testutil.ToFloat64(tc.sharedErrors) == 0 {
		t.Fatal("Redis errors were not counted")
	}
	srv.Restart()
	tc.mustDecide(t, "c")
	if n, _ := client.Exists(context.Background(), "t:d:"+tc.Key(resolver.Credentials{Bearer: "c"}).String()).Result(); n != 1 {
		t.Fatal("Redis came back but was not used again")
	}
}

func TestPurgeDuringMissIsNotUndone(t *testing.T) {
	eachTier(t, func(t *testing.T, shared Tier) {
		tc := newTestCache(t, shared, testTTL)
		entered, release := tc.stub.hold()
		done := make(chan *resolver.Decision)
		go func() {
			d, _ := tc.Decide(context.Background(), bearer("a"))
			done <- d
		}()
		<-entered // the old answer is on its way
		if err := tc.PurgeUser(context.Background(), "user-a"); err != nil {
			t.Fatal(err)
		}
		release()
		<-done
		tc.stub.mu.Lock()
		tc.stub.gate, tc.stub.entered = nil, nil
		tc.stub.mu.Unlock()
		tc.mustDecide(t, "a")
		if n := tc.stub.calls.Load(); n != 2 {
			t.Fatalf("resolver calls = %d, want 2: the answer fetched before the purge was cached after it", n)
		}
	})
}

func TestPurgeKeyAndUser(t *testing.T) {
	tc := newTestCache(t, nil, testTTL)
	tc.mustDecide(t, "a")
	tc.mustDecide(t, "b")
	if err := tc.PurgeKey(context.Background(), tc.Key(resolver.Credentials{Bearer: "a"})); err != nil {
		t.Fatal(err)
	}
	tc.mustDecide(t, "a")
	tc.mustDecide(t, "b")
	if n := tc.stub.calls.Load(); n != 3 {
		t.Fatalf("calls = %d, want 3 (a purged, b still cached)", n)
	}
	_ = tc.PurgeUser(context.Background(), "user-b")
	tc.mustDecide(t, "b")
	if n := tc.stub.calls.Load(); n != 4 {
		t.Fatalf("calls = %d, want 4 (user-b purged)", n)
	}
}

func TestKeyDependsOnEveryCredentialAndTheSecret(t *testing.T) {
	k := NewKeyer([]byte("s1"))
	base := resolver.Credentials{Bearer: "t", AppSession: "a", AppAccessToken: "b", Session: "c"}
	seen := map[Key]string{k.Key(base): "base"}
	variants := map[string]resolver.Credentials{
		"bearer":      {Bearer: "t2", AppSession: "a", AppAccessToken: "b", Session: "c"},
		"app_session": {Bearer: "t", AppSession: "a2", AppAccessToken: "b", Session: "c"},
		"access":      {Bearer: "t", AppSession: "a", AppAccessToken: "b2", Session: "c"},
		"session":     {Bearer: "t", AppSession: "a", AppAccessToken: "b", Session: "c2"},
		"shifted":     {Bearer: "ta", AppSession: "", AppAccessToken: "b", Session: "c"},
		"moved":       {Session: "t"},
	}
	for name, c := range variants {
		kk := k.Key(c)
		if prev, dup := seen[kk]; dup {
			t.Errorf("%s has the same key as %s", name, prev)
		}
		seen[kk] = name
	}
	if NewKeyer([]byte("s2")).Key(base) == k.Key(base) {
		t.Error("the key does not depend on the secret")
	}
	if NewKeyer([]byte("s1")).Key(base) != k.Key(base) {
		t.Error("the key is not stable across keyers (replicas) with the same secret")
	}
}

// eventually polls cond until it holds or a generous deadline passes; it
// asserts an outcome, not a speed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPurgeReachesEveryReplicasMemory(t *testing.T) {
	for _, byUser := range []bool{true, false} {
		name := map[bool]string{true: "by user", false: "by credential"}[byUser]
		t.Run(name, func(t *testing.T) {
			tier, _, _ := newRedisTier(t)
			purgeReachesEveryReplica(t, tier, byUser)
		})
	}
}

func TestStaleIfError(t *testing.T) {
	const stale = 30 * time.Second
	withStale := func(c *Config) { c.StaleIfError = stale }
	failing := func(resolver.Request) (*resolver.Decision, error) {
		return nil, fmt.Errorf("%w: status 500", resolver.ErrUnavailable)
	}
	t.Run("in-process", func(t *testing.T) {
		tc := newTestCache(t, nil, testTTL+stale, withStale)
		tc.mustDecide(t, "a")
		tc.clock.Advance(testTTL + time.Second)
		tc.stub.decide = failing
		d := tc.mustDecide(t, "a")
		if !d.Allow || !d.Stale || d.Identity.UserID != "user-a" {
			t.Fatalf("got %+v, want a stale allow", d)
		}
		if testutil.ToFloat64(tc.staleServed) != 1 {
			t.Fatal("stale answer not counted")
		}
		tc.clock.Advance(stale)
		if _, err := tc.Decide(context.Background(), bearer("a")); !errors.Is(err, resolver.ErrUnavailable) {
			t.Fatalf("past STALE_IF_ERROR: err = %v, want ErrUnavailable", err)
		}
	})
	t.Run("fresh answer preferred when Authgear answers", func(t *testing.T) {
		tc := newTestCache(t, nil, testTTL+stale, withStale)
		tc.mustDecide(t, "a")
		tc.clock.Advance(testTTL + time.Second)
		if d := tc.mustDecide(t, "a"); d.Stale {
			t.Fatal("served stale although Authgear answered")
		}
		if n := tc.stub.calls.Load(); n != 2 {
			t.Fatalf("calls = %d, want 2", n)
		}
	})
	t.Run("a deny is never served stale", func(t *testing.T) {
		tc := newTestCache(t, nil, testTTL+stale, withStale)
		tc.stub.decide = func(resolver.Request) (*resolver.Decision, error) { return resolver.Deny(), nil }
		tc.mustDecide(t, "a")
		tc.clock.Advance(testNegTTL + time.Second)
		tc.stub.decide = failing
		if _, err := tc.Decide(context.Background(), bearer("a")); !errors.Is(err, resolver.ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
	})
	t.Run("never past a token's exp", func(t *testing.T) {
		tc := newTestCache(t, nil, testTTL+stale, withStale)
		exp := tc.clock.Now().Add(10 * time.Second)
		tc.stub.decide = func(resolver.Request) (*resolver.Decision, error) {
			return resolver.Allow(resolver.Identity{UserID: "u"}, exp), nil
		}
		tc.mustDecide(t, "jwt")
		tc.clock.Advance(11 * time.Second)
		tc.stub.decide = failing
		if _, err := tc.Decide(context.Background(), bearer("jwt")); err == nil {
			t.Fatal("an expired token was served stale")
		}
	})
	t.Run("off by default", func(t *testing.T) {
		tc := newTestCache(t, nil, testTTL)
		tc.mustDecide(t, "a")
		tc.clock.Advance(testTTL + time.Second)
		tc.stub.decide = failing
		if _, err := tc.Decide(context.Background(), bearer("a")); err == nil {
			t.Fatal("served stale without STALE_IF_ERROR")
		}
	})
	t.Run("from Redis on another replica", func(t *testing.T) {
		tier, _, _ := newRedisTier(t)
		a := newTestCache(t, tier, 5*time.Second, withStale)
		a.mustDecide(t, "a")
		// b's clock is past the TTL; Redis still holds the entry for the stale window.
		b := newTestCache(t, tier, 5*time.Second, withStale)
		b.clock.Advance(testTTL + time.Second)
		b.stub.decide = failing
		d := b.mustDecide(t, "a")
		if !d.Stale || d.Identity.UserID != "user-a" {
			t.Fatalf("got %+v, want a stale allow from Redis", d)
		}
	})
}

// eachTier runs fn without a shared tier, then over a real Redis.
func eachTier(t *testing.T, fn func(t *testing.T, shared Tier)) {
	t.Run("in-process", func(t *testing.T) { fn(t, nil) })
	t.Run("redis", func(t *testing.T) {
		shared, _, _ := newRedisTier(t)
		fn(t, shared)
	})
}

// TestSubscribingClearsMemory: whenever a replica (re)subscribes it may have
// missed purges, so it forgets what it holds in memory.
func TestSubscribingClearsMemory(t *testing.T) {
	tier, _, _ := newRedisTier(t)
	tc := newTestCache(t, tier, time.Hour)
	tc.mustDecide(t, "a")
	k := tc.Key(resolver.Credentials{Bearer: "a"})
	if _, ok, _ := tc.local.Get(context.Background(), k); !ok {
		t.Fatal("setup: not in memory")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	StartListening(ctx, tier, nil, tc.Cache)
	eventually(t, "memory cleared on subscribing", func() bool {
		_, ok, _ := tc.local.Get(ctx, k)
		return !ok
	})
	eventually(t, "ready once subscribed", func() bool { return tier.Ping(ctx) == nil })
}
