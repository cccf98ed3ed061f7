package cache

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgear/authgear-forwardauth/cache/redistest"
	"github.com/authgear/authgear-forwardauth/resolver"
)

// newTierOver returns a Redis tier over client (a single node, a Cluster or a
// Sentinel set-up) with a key prefix of its own.
func newTierOver(t *testing.T, client redis.UniversalClient, cfg RedisConfig) (*Redis, string) {
	t.Helper()
	prefix := "topo" + strconv.FormatInt(time.Now().UnixNano(), 36) + strconv.FormatInt(testPrefixes.Add(1), 10) + ":"
	cfg.Prefix = prefix
	if cfg.Timeout == 0 {
		cfg = RedisConfig{Prefix: prefix, Timeout: time.Second, TombstoneTTL: 5 * time.Second, MaxTTL: time.Minute}
	}
	return NewRedis(client, cfg, discard), prefix
}

// topologySuite is what every Redis topology must pass beside tierSuite.
func topologySuite(t *testing.T, client redis.UniversalClient) {
	t.Run("tier", func(t *testing.T) {
		tierSuite(t, func(t *testing.T) tierCase {
			r, prefix := newTierOver(t, client, RedisConfig{})
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
	})
	t.Run("purge beats write in flight", func(t *testing.T) {
		r, _ := newTierOver(t, client, RedisConfig{})
		purgeBeatsWriteInFlight(t, r)
	})
	t.Run("purge during a miss is not undone", func(t *testing.T) {
		r, _ := newTierOver(t, client, RedisConfig{})
		tc := newTestCache(t, r, testTTL)
		entered, release := tc.stub.hold()
		done := make(chan *resolver.Decision)
		go func() {
			d, _ := tc.Decide(context.Background(), bearer("a"))
			done <- d
		}()
		<-entered
		if err := tc.PurgeUser(context.Background(), "user-a"); err != nil {
			t.Fatal(err)
		}
		release()
		<-done
		tc.stub.mu.Lock()
		tc.stub.gate, tc.stub.entered = nil, nil
		tc.stub.mu.Unlock()
		other := newTestCache(t, r, testTTL) // empty memory: asks Redis
		other.mustDecide(t, "a")
		if n := other.stub.calls.Load(); n != 1 {
			t.Fatalf("another replica's resolver calls = %d, want 1: the answer fetched before the purge was left in Redis", n)
		}
	})
	t.Run("many users purged, one by one", func(t *testing.T) {
		// Users whose keys land on every node of a Cluster.
		r, _ := newTierOver(t, client, RedisConfig{})
		ctx := context.Background()
		exp := time.Now().Add(time.Minute)
		for i := range 30 {
			u := "user-" + strconv.Itoa(i)
			for j := range 3 {
				if err := r.Set(ctx, key(fmt.Sprintf("%s/%d", u, j)), Entry{Decision: allowFor(u), Expires: exp}); err != nil {
					t.Fatal(err)
				}
			}
		}
		for i := range 30 {
			if i%2 == 0 {
				if err := r.DeleteUser(ctx, "user-"+strconv.Itoa(i)); err != nil {
					t.Fatal(err)
				}
			}
		}
		for i := range 30 {
			for j := range 3 {
				_, ok, err := r.Get(ctx, key(fmt.Sprintf("user-%d/%d", i, j)))
				if err != nil {
					t.Fatal(err)
				}
				if ok == (i%2 == 0) {
					t.Fatalf("user-%d/%d: served %v after purging every even user", i, j, ok)
				}
			}
		}
	})
}

func TestRedisTierOverCluster(t *testing.T) {
	cl := redistest.StartCluster(t)
	client := cl.Client()
	topologySuite(t, client)

	t.Run("decisions spread over every master; a user's index and tombstone share a slot", func(t *testing.T) {
		r, prefix := newTierOver(t, client, RedisConfig{})
		ctx := context.Background()
		for i := range 60 {
			_ = r.Set(ctx, key("spread-"+strconv.Itoa(i)), Entry{Decision: allowFor("u" + strconv.Itoa(i)), Expires: time.Now().Add(time.Minute)})
		}
		for _, addr := range cl.Addrs {
			node := redis.NewClient(&redis.Options{Addr: addr})
			n, err := node.Eval(ctx, `return #redis.call('KEYS', ARGV[1])`, nil, prefix+"d:*").Int()
			node.Close()
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				t.Errorf("node %s holds none of 60 decisions: the Cluster is not sharding", addr)
			}
		}
		for _, u := range []string{"u1", "8f7a2c1e-1b0d-4b8e-9f3a-2c9d7e6f5a41", "a}b", "{x}"} {
			a, _ := client.ClusterKeySlot(ctx, r.indexKey(u)).Result()
			b, _ := client.ClusterKeySlot(ctx, r.tombstoneKey(u)).Result()
			if a != b {
				t.Errorf("user %q: index in slot %d, tombstone in slot %d", u, a, b)
			}
		}
	})

	t.Run("a classic PUBLISH on any node reaches a ClusterClient subscriber", func(t *testing.T) {
		ctx := context.Background()
		ps := client.Subscribe(ctx, "topo-test-channel")
		defer ps.Close()
		if _, err := ps.Receive(ctx); err != nil { // the subscription
			t.Fatal(err)
		}
		for _, addr := range cl.Addrs {
			node := redis.NewClient(&redis.Options{Addr: addr})
			err := node.Publish(ctx, "topo-test-channel", addr).Err()
			node.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
		got := map[string]bool{}
		for range cl.Addrs {
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			m, err := ps.ReceiveMessage(rctx)
			cancel()
			if err != nil {
				t.Fatalf("after %v: %v", got, err)
			}
			got[m.Payload] = true
		}
		for _, addr := range cl.Addrs {
			if !got[addr] {
				t.Errorf("message published on %s not received", addr)
			}
		}
	})

	t.Run("purges reach every replica's memory", func(t *testing.T) {
		for _, byUser := range []bool{true, false} {
			t.Run(map[bool]string{true: "by user", false: "by credential"}[byUser], func(t *testing.T) {
				tier, _ := newTierOver(t, client, RedisConfig{})
				purgeReachesEveryReplica(t, tier, byUser)
			})
		}
	})
}

// purgeReachesEveryReplica: a purge on replica a empties replica b's memory
// through the channel.
func purgeReachesEveryReplica(t *testing.T, tier *Redis, byUser bool) {
	t.Helper()
	a := newTestCache(t, tier, time.Hour)
	b := newTestCache(t, tier, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listenSubscribed(t, ctx, tier, a, b)
	a.mustDecide(t, "tok")
	b.mustDecide(t, "tok")
	k := b.Key(resolver.Credentials{Bearer: "tok"})
	if _, ok, _ := b.local.Get(ctx, k); !ok {
		t.Fatal("setup: b did not keep the decision in memory")
	}
	var err error
	if byUser {
		err = a.PurgeUser(ctx, "user-tok")
	} else {
		err = a.PurgeCredentials(ctx, resolver.Credentials{Bearer: "tok"})
	}
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "b dropped the purged decision from memory", func() bool {
		_, ok, _ := b.local.Get(ctx, k)
		return !ok
	})
	b.mustDecide(t, "tok")
	if n := b.stub.calls.Load(); n != 1 {
		t.Fatalf("b's resolver calls = %d, want 1: it did not ask Authgear again after the purge", n)
	}
}

// listenSubscribed starts Listen for each cache and returns once each has
// handled its subscription, which clears its memory: a decision kept before
// that would be dropped under the test.
func listenSubscribed(t *testing.T, ctx context.Context, tier *Redis, caches ...*testCache) {
	t.Helper()
	for _, c := range caches {
		s := &subscribedSignal{Purgeable: c.Cache, done: make(chan struct{})}
		go Listen(ctx, tier, nil, s)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			t.Fatal("never subscribed")
		}
	}
}

// subscribedSignal tells when Listen first cleared the cache it wraps, that
// is when its subscription was confirmed.
type subscribedSignal struct {
	Purgeable
	once sync.Once
	done chan struct{}
}

func (s *subscribedSignal) clear() {
	s.Purgeable.clear()
	s.once.Do(func() { close(s.done) })
}
