package cache

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/authgear/authgear-forwardauth/cache/redistest"
	"github.com/authgear/authgear-forwardauth/resolver"
)

func TestRedisTierOverSentinel(t *testing.T) {
	s := redistest.StartSentinel(t)
	client := s.Client()
	topologySuite(t, client)
	t.Run("purges reach every replica's memory", func(t *testing.T) {
		tier, _ := newTierOver(t, client, RedisConfig{})
		purgeReachesEveryReplica(t, tier, true)
	})
}

// TestSentinelFailoverUnderLoad kills the Redis master while two replicas of
// the service answer a steady stream of requests: every answer stays right
// (the resolver answers while Redis cannot), and once the sentinel has
// promoted the replica the shared tier and the purge channel are used again,
// without a restart.
func TestSentinelFailoverUnderLoad(t *testing.T) {
	s := redistest.StartSentinel(t)
	// As main.go builds it for REDIS_MODE=sentinel, with short timeouts.
	o, err := redis.ParseFailoverURL(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.MaxRetries = 500*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond, -1
	o.ContextTimeoutEnabled = true
	client := redis.NewFailoverClient(o)
	t.Cleanup(func() { client.Close() })
	tier, prefix := newTierOver(t, client, RedisConfig{
		Timeout: 200 * time.Millisecond, RetryAfter: 100 * time.Millisecond, TombstoneTTL: 5 * time.Second, MaxTTL: time.Minute,
	})
	a := newTestCache(t, tier, time.Hour) // writes new decisions
	b := newTestCache(t, tier, time.Hour) // reads them back, mostly from Redis
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listenSubscribed(t, ctx, tier, a, b)

	// The load: a bounded number of requests, each checked.
	const maxCalls = 20000
	var (
		calls, wrong atomic.Int64
		written      atomic.Int64 // tokens 0..written-1 have been decided by a
		firstWrong   atomic.Value
		stop         = make(chan struct{})
		wg           sync.WaitGroup
	)
	check := func(c *testCache, tok string) {
		calls.Add(1)
		d, err := c.Decide(context.Background(), bearer(tok))
		switch {
		case err != nil:
			err = fmt.Errorf("%s: %v", tok, err)
		case !d.Allow || d.Identity.UserID != "user-"+tok:
			err = fmt.Errorf("%s: got %+v", tok, d)
		}
		if err != nil {
			wrong.Add(1)
			firstWrong.CompareAndSwap(nil, err.Error())
		}
	}
	running := func() bool {
		select {
		case <-stop:
			return false
		default:
			return calls.Load() < maxCalls
		}
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; running(); i++ {
			check(a, "load-"+strconv.Itoa(i))
			written.Store(int64(i + 1))
			time.Sleep(time.Millisecond)
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; running(); {
			if int64(i) >= written.Load() {
				time.Sleep(time.Millisecond)
				continue
			}
			check(b, "load-"+strconv.Itoa(i))
			i++
		}
	}()

	eventually(t, "load under way", func() bool { return calls.Load() >= 1000 })
	old := s.KillMaster()
	killedAt := calls.Load()
	newMaster := s.WaitForNewMaster(old)
	direct := redis.NewClient(&redis.Options{Addr: newMaster})
	defer direct.Close()

	// The tier writes again, through the new master, and a replica that has
	// not seen the token reads it from there.
	reader := newTestCache(t, tier, time.Hour)
	n := 0
	eventually(t, "a decision written through the new master and read back from it by another replica", func() bool {
		n++
		tok := "after-" + strconv.Itoa(n)
		check(a, tok)
		k := a.Key(resolver.Credentials{Bearer: tok})
		if e, _ := direct.Exists(ctx, prefix+"d:"+k.String()).Result(); e != 1 {
			return false
		}
		before := reader.stub.calls.Load()
		check(reader, tok)
		return reader.stub.calls.Load() == before
	})
	eventually(t, "requests served after the failover", func() bool { return calls.Load() >= killedAt+2000 || calls.Load() >= maxCalls })
	close(stop)
	wg.Wait()
	if w := wrong.Load(); w != 0 {
		t.Fatalf("%d of %d answers wrong or failed across the failover; first: %v", w, calls.Load(), firstWrong.Load())
	}
	redisErrors := testutil.ToFloat64(a.sharedErrors) + testutil.ToFloat64(b.sharedErrors)
	if redisErrors == 0 {
		t.Fatal("no request met the dead master: the failover happened outside the load")
	}
	t.Logf("%d requests, all right (%v Redis errors or skips counted); master %s killed after %d, %s promoted",
		calls.Load(), redisErrors, old, killedAt, newMaster)

	// Both replicas listen again, on the new master, and purges reach them.
	eventually(t, "both replicas subscribed again", func() bool {
		m, _ := direct.PubSubNumSub(ctx, tier.channel()).Result()
		return m[tier.channel()] == 2
	})
	// Resubscribing cleared b's memory; it reads the decision from Redis.
	b.mustDecide(t, "purged-later")
	k := b.Key(resolver.Credentials{Bearer: "purged-later"})
	eventually(t, "b keeps the decision in memory", func() bool {
		b.mustDecide(t, "purged-later")
		_, ok, _ := b.local.Get(ctx, k)
		return ok
	})
	if err := a.PurgeUser(ctx, "user-purged-later"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b dropped the purged decision from memory", func() bool {
		_, ok, _ := b.local.Get(ctx, k)
		return !ok
	})
}
