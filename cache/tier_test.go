package cache

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/authgear/authgear-forwardauth/cache/redistest"
	"github.com/authgear/authgear-forwardauth/internal/clocktest"
	"github.com/authgear/authgear-forwardauth/resolver"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

var testPrefixes atomic.Int64

// newRedisTier returns a Redis tier on a real server, with a key prefix of
// its own so that tests sharing a server do not meet.
func newRedisTier(t *testing.T) (*Redis, *redis.Client, string) {
	t.Helper()
	opts, err := redis.ParseURL(redistest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(opts)
	t.Cleanup(func() { client.Close() })
	prefix := "test" + strconv.FormatInt(time.Now().UnixNano(), 36) + strconv.FormatInt(testPrefixes.Add(1), 10) + ":"
	tier := NewRedis(client, RedisConfig{
		Prefix: prefix, Timeout: time.Second, RetryAfter: 0, TombstoneTTL: 5 * time.Second, MaxTTL: time.Minute,
	}, discard)
	t.Cleanup(tier.Close)
	return tier, client, prefix
}

func allowFor(user string, roles ...string) *resolver.Decision {
	return resolver.Allow(resolver.Identity{
		UserID: user, Verified: true, Roles: roles, AMR: []string{"pwd", "otp"}, AuthenticatedAt: 1700000000,
	}, time.Time{})
}

func key(s string) Key { return NewKeyer([]byte("test-secret")).Key(resolver.Credentials{Bearer: s}) }

// tierSuite is run against every tier: they must behave alike.
type tierCase struct {
	tier Tier
	// expired makes the entry stored under k (set to expire in ttl) be seen
	// past its expiry, or checks that the tier will not keep it longer.
	checkExpiry func(t *testing.T, k Key, ttl time.Duration)
}

func tierSuite(t *testing.T, newTier func(t *testing.T) tierCase) {
	ctx := context.Background()
	t.Run("miss", func(t *testing.T) {
		tc := newTier(t)
		if _, ok, err := tc.tier.Get(ctx, key("nothing")); ok || err != nil {
			t.Fatalf("Get of unknown key = %v, %v; want a miss", ok, err)
		}
	})
	t.Run("allow round trip keeps the identity", func(t *testing.T) {
		tc := newTier(t)
		want := allowFor("user-1", "admin", "editor")
		exp := time.Now().Add(time.Minute)
		if err := tc.tier.Set(ctx, key("a"), Entry{Decision: want, Expires: exp}); err != nil {
			t.Fatal(err)
		}
		e, ok, err := tc.tier.Get(ctx, key("a"))
		if !ok || err != nil {
			t.Fatalf("Get = %v, %v; want a hit", ok, err)
		}
		if !e.Decision.Allow || e.Decision.Identity.UserID != "user-1" {
			t.Fatalf("got %+v", e.Decision)
		}
		for name, v := range want.Header() {
			if got := e.Decision.Header()[name]; len(got) != 1 || got[0] != v[0] {
				t.Errorf("%s = %q, want %q", name, got, v)
			}
		}
		if d := e.Expires.Sub(exp); d > time.Millisecond || d < -time.Millisecond {
			t.Errorf("expires %v, want %v", e.Expires, exp)
		}
	})
	t.Run("deny round trip", func(t *testing.T) {
		tc := newTier(t)
		if err := tc.tier.Set(ctx, key("d"), Entry{Decision: resolver.Deny(), Expires: time.Now().Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		e, ok, err := tc.tier.Get(ctx, key("d"))
		if !ok || err != nil || e.Decision.Allow {
			t.Fatalf("Get = %+v, %v, %v; want a cached deny", e.Decision, ok, err)
		}
	})
	t.Run("an expired entry is not stored", func(t *testing.T) {
		tc := newTier(t)
		_ = tc.tier.Set(ctx, key("old"), Entry{Decision: allowFor("u"), Expires: time.Now().Add(-time.Second)})
		if _, ok, _ := tc.tier.Get(ctx, key("old")); ok {
			t.Fatal("an entry past its expiry was served")
		}
	})
	t.Run("an entry lives no longer than its expiry", func(t *testing.T) {
		tc := newTier(t)
		ttl := 3 * time.Second
		_ = tc.tier.Set(ctx, key("short"), Entry{Decision: allowFor("u"), Expires: time.Now().Add(ttl)})
		tc.checkExpiry(t, key("short"), ttl)
	})
	t.Run("delete", func(t *testing.T) {
		tc := newTier(t)
		_ = tc.tier.Set(ctx, key("x"), Entry{Decision: allowFor("u"), Expires: time.Now().Add(time.Minute)})
		if err := tc.tier.Delete(ctx, key("x")); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := tc.tier.Get(ctx, key("x")); ok {
			t.Fatal("deleted entry still served")
		}
	})
	t.Run("delete user removes all of that user's allows and nothing else", func(t *testing.T) {
		tc := newTier(t)
		exp := time.Now().Add(time.Minute)
		_ = tc.tier.Set(ctx, key("u1-a"), Entry{Decision: allowFor("u1"), Expires: exp})
		_ = tc.tier.Set(ctx, key("u1-b"), Entry{Decision: allowFor("u1"), Expires: exp})
		_ = tc.tier.Set(ctx, key("u2"), Entry{Decision: allowFor("u2"), Expires: exp})
		_ = tc.tier.Set(ctx, key("deny"), Entry{Decision: resolver.Deny(), Expires: exp})
		if err := tc.tier.DeleteUser(ctx, "u1"); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"u1-a", "u1-b"} {
			if _, ok, _ := tc.tier.Get(ctx, key(k)); ok {
				t.Errorf("%s still served after its user was purged", k)
			}
		}
		for _, k := range []string{"u2", "deny"} {
			if _, ok, _ := tc.tier.Get(ctx, key(k)); !ok {
				t.Errorf("%s was purged with another user", k)
			}
		}
	})
}

func TestLocalTier(t *testing.T) {
	tierSuite(t, func(t *testing.T) tierCase {
		clock := clocktest.New(time.Now())
		l := NewLocal(1000, time.Hour, clock)
		return tierCase{tier: l, checkExpiry: func(t *testing.T, k Key, ttl time.Duration) {
			// The suite sets Expires from the real clock, which has moved on
			// since this fake one was set (by more than a millisecond on a
			// loaded machine): step to the entry's own expiry.
			e, ok, _ := l.Get(context.Background(), k)
			if !ok {
				t.Fatal("entry not stored")
			}
			clock.Advance(e.Expires.Sub(clock.Now()) - time.Millisecond)
			if _, ok, _ := l.Get(context.Background(), k); !ok {
				t.Fatal("entry gone before its expiry")
			}
			clock.Advance(2 * time.Millisecond)
			if _, ok, _ := l.Get(context.Background(), k); ok {
				t.Fatal("entry served past its expiry")
			}
		}}
	})
}

func TestLocalTierTTLBoundsEntries(t *testing.T) {
	clock := clocktest.New(time.Now())
	l := NewLocal(1000, 5*time.Second, clock)
	_ = l.Set(context.Background(), key("k"), Entry{Decision: allowFor("u"), Expires: clock.Now().Add(time.Hour)})
	clock.Advance(5*time.Second + time.Millisecond)
	if _, ok, _ := l.Get(context.Background(), key("k")); ok {
		t.Fatal("in-process entry outlived the tier's TTL")
	}
}

func TestRedisTier(t *testing.T) {
	redistest.Require(t, "redis-server")
	tierSuite(t, func(t *testing.T) tierCase {
		r, client, prefix := newRedisTier(t)
		return tierCase{tier: r, checkExpiry: func(t *testing.T, k Key, ttl time.Duration) {
			pttl, err := client.PTTL(context.Background(), prefix+"d:"+k.String()).Result()
			if err != nil {
				t.Fatal(err)
			}
			if pttl <= 0 || pttl > ttl {
				t.Fatalf("Redis keeps the entry for %v, want at most %v", pttl, ttl)
			}
		}}
	})
}

func TestRedisTierPurgeBeatsWriteInFlight(t *testing.T) {
	r, _, _ := newRedisTier(t)
	purgeBeatsWriteInFlight(t, r)
}

// purgeBeatsWriteInFlight checks the tombstone on any Redis topology.
func purgeBeatsWriteInFlight(t *testing.T, r *Redis) {
	t.Helper()
	ctx := context.Background()
	// A miss started before the purge writes its answer after it: the
	// tombstone takes it back.
	if err := r.DeleteUser(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	_ = r.Set(ctx, key("late"), Entry{Decision: allowFor("u1"), Expires: time.Now().Add(time.Minute)})
	if _, ok, _ := r.Get(ctx, key("late")); ok {
		t.Fatal("an answer fetched before a purge was written back after it")
	}
	_ = r.Set(ctx, key("other"), Entry{Decision: allowFor("u2"), Expires: time.Now().Add(time.Minute)})
	if _, ok, _ := r.Get(ctx, key("other")); !ok {
		t.Fatal("another user's entry was refused")
	}
}

func TestRedisTierDownIsAnErrorAndComesBack(t *testing.T) {
	srv := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1})
	t.Cleanup(func() { client.Close() })
	r := NewRedis(client, RedisConfig{Prefix: "t:", Timeout: 200 * time.Millisecond, RetryAfter: 0, TombstoneTTL: time.Second, MaxTTL: time.Minute}, discard)
	ctx := context.Background()
	srv.Stop()
	if _, _, err := r.Get(ctx, key("k")); err == nil {
		t.Fatal("Get on a stopped Redis reported no error")
	}
	if err := r.Ping(ctx); err == nil {
		t.Fatal("Ping on a stopped Redis reported no error")
	}
	srv.Restart()
	if err := r.Set(ctx, key("k"), Entry{Decision: allowFor("u"), Expires: time.Now().Add(time.Minute)}); err != nil {
		t.Fatalf("Redis came back but Set failed: %v", err)
	}
	if _, ok, err := r.Get(ctx, key("k")); !ok || err != nil {
		t.Fatalf("Redis came back but Get = %v, %v", ok, err)
	}
}

func TestRedisTierRestsAfterAFailure(t *testing.T) {
	srv := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1})
	t.Cleanup(func() { client.Close() })
	r := NewRedis(client, RedisConfig{Prefix: "t:", Timeout: 200 * time.Millisecond, RetryAfter: time.Hour, TombstoneTTL: time.Second, MaxTTL: time.Minute}, discard)
	t.Cleanup(r.Close)
	srv.Stop()
	if _, _, err := r.Get(context.Background(), key("k")); err == nil || errors.Is(err, ErrSkipped) {
		t.Fatalf("first Get on a stopped Redis: %v, want its own error", err)
	}
	srv.Restart()
	// Within RetryAfter the tier is not asked at all, so a dead Redis does
	// not add its timeout to every request.
	if _, _, err := r.Get(context.Background(), key("k")); !errors.Is(err, ErrSkipped) {
		t.Fatalf("Get while resting: %v, want ErrSkipped", err)
	}
}

func TestRedisNotReadyUntilListening(t *testing.T) {
	r, _, _ := newRedisTier(t)
	if err := r.Ping(context.Background()); err != nil {
		t.Fatalf("no subscriber expected: %v", err)
	}
	r.listening.Store(1) // a subscriber started but not subscribed yet
	if err := r.Ping(context.Background()); err == nil {
		t.Fatal("ready while not yet listening for purges")
	}
	r.listening.Store(2)
	if err := r.Ping(context.Background()); err != nil {
		t.Fatalf("listening: %v", err)
	}
}

// TestSubscriptionGaugeFollowsTheSubscription: forwardauth_purge_subscription_up
// is 1 only while the replica listens for purges, so an alert can tell a
// replica that misses other replicas' revocations.
func TestSubscriptionGaugeFollowsTheSubscription(t *testing.T) {
	srv := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1})
	t.Cleanup(func() { client.Close() })
	r := NewRedis(client, RedisConfig{Prefix: "t:", Timeout: time.Second, RetryAfter: 0, TombstoneTTL: time.Second, MaxTTL: time.Minute}, discard)
	t.Cleanup(r.Close)
	gauge := r.SubscriptionGauge()
	if got := testutil.ToFloat64(gauge); got != 0 {
		t.Fatalf("before listening: %v, want 0", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	StartListening(ctx, r, nil)
	eventually(t, "gauge 1 once subscribed", func() bool { return testutil.ToFloat64(gauge) == 1 })
	srv.Stop()
	eventually(t, "gauge 0 while Redis is down", func() bool { return testutil.ToFloat64(gauge) == 0 })
	srv.Restart()
	eventually(t, "gauge 1 once subscribed again", func() bool { return testutil.ToFloat64(gauge) == 1 })
	cancel()
	eventually(t, "gauge 0 once the subscriber stopped", func() bool { return testutil.ToFloat64(gauge) == 0 })
}
