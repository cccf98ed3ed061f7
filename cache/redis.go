package cache

import (
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// ErrSkipped is returned while the Redis tier rests after a failure: a dead
// Redis must not add its timeout to every request.
var ErrSkipped = errors.New("redis tier skipped after a recent failure")

// RedisConfig tunes the Redis tier.
type RedisConfig struct {
	Prefix  string        // of every key and channel, e.g. "forwardauth:"
	Timeout time.Duration // of each operation
	// RetryAfter is how long the tier is skipped after a failure.
	RetryAfter time.Duration
	// TombstoneTTL must outlast any miss in flight when a purge lands.
	TombstoneTTL time.Duration
	// MaxTTL bounds how long a user's index of keys is kept.
	MaxTTL time.Duration
}

// Redis is the shared tier. Keys: {prefix}d:{key} holds a decision;
// {prefix}u:{{user}} the set of a user's keys; {prefix}p:{{user}} marks a
// recent purge. The user's two keys share a hash slot, so that in a Cluster
// they are read and written on one node, in order.
type Redis struct {
	client    redis.UniversalClient
	cfg       RedisConfig
	logger    *slog.Logger
	downUntil atomic.Int64 // unix nanoseconds
	// listening is 0 without a subscriber, 1 while one is (re)subscribing,
	// 2 once it listens: a replica that may miss purges is not ready.
	listening atomic.Int32

	gets   chan getRequest
	dones  sync.Pool // of chan getResult
	closed chan struct{}
	once   sync.Once
}

// getRequest is one GET waiting for a pipeline.
type getRequest struct {
	key  string
	done chan getResult
}

type getResult struct {
	raw string
	err error
}

// Concurrent GETs share round trips: a few workers (one per CPU, two at
// least, so that one slow round trip does not hold up every GET) each send
// whatever GETs are waiting as one pipeline. Alone, a GET goes at once; under
// load the pipelines fill, and the system calls of a round trip, most of what
// a Redis hit costs on both sides, are paid once per pipeline. More workers
// than CPUs measured worse: smaller pipelines.
const maxPipeline = 128

// NewRedis returns the Redis tier over client.
// Close stops its workers; it does not close client.
func NewRedis(client redis.UniversalClient, cfg RedisConfig, logger *slog.Logger) *Redis {
	r := &Redis{client: client, cfg: cfg, logger: logger, gets: make(chan getRequest, maxPipeline), closed: make(chan struct{})}
	for range max(2, runtime.GOMAXPROCS(0)) {
		go r.pipelineGets()
	}
	return r
}

// Close stops the tier's workers.
func (r *Redis) Close() { r.once.Do(func() { close(r.closed) }) }

func (r *Redis) pipelineGets() {
	batch := make([]getRequest, 0, maxPipeline)
	cmds := make([]*redis.StringCmd, 0, maxPipeline)
	for {
		select {
		case <-r.closed:
			return
		case g := <-r.gets:
			batch = append(batch[:0], g)
		}
	drain:
		for len(batch) < maxPipeline {
			select {
			case g := <-r.gets:
				batch = append(batch, g)
			default:
				break drain
			}
		}
		cmds = cmds[:0]
		err := r.call(context.Background(), func(ctx context.Context) error {
			_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, g := range batch {
					cmds = append(cmds, p.Get(ctx, g.key))
				}
				return nil
			})
			return err // redis.Nil (a miss) is not a failure for call
		})
		for i, g := range batch {
			switch {
			case i < len(cmds) && !errors.Is(err, ErrSkipped):
				raw, err := cmds[i].Result()
				g.done <- getResult{raw, err}
			default:
				g.done <- getResult{"", err}
			}
		}
	}
}

// get is one GET through the pipelines; redis.Nil for a missing key.
func (r *Redis) get(ctx context.Context, key string) (string, error) {
	if until := r.downUntil.Load(); until != 0 && time.Now().UnixNano() < until {
		return "", ErrSkipped
	}
	done, _ := r.dones.Get().(chan getResult)
	if done == nil {
		done = make(chan getResult, 1)
	}
	select {
	case r.gets <- getRequest{key: key, done: done}:
	case <-r.closed:
		return "", ErrSkipped
	case <-ctx.Done():
		return "", ctx.Err()
	}
	select {
	case res := <-done:
		r.dones.Put(done) // empty again: safe to reuse
		return res.raw, res.err
	case <-ctx.Done():
		return "", ctx.Err() // the worker will still answer: done is not reused
	}
}

func (r *Redis) decisionKey(k Key) string {
	b := make([]byte, 0, len(r.cfg.Prefix)+2+2*len(k))
	b = append(append(b, r.cfg.Prefix...), "d:"...)
	return string(hex.AppendEncode(b, k[:]))
}

// The user's part is hex, so that any user id (empty, or with braces of its
// own) gives one well-formed hash tag.
func (r *Redis) indexKey(user string) string {
	return r.cfg.Prefix + "u:{" + hex.EncodeToString([]byte(user)) + "}"
}
func (r *Redis) tombstoneKey(user string) string {
	return r.cfg.Prefix + "p:{" + hex.EncodeToString([]byte(user)) + "}"
}

// call runs op with the tier's timeout unless the tier is resting, and rests
// it on failure. redis.Nil is not a failure.
func (r *Redis) call(ctx context.Context, op func(context.Context) error) error {
	if until := r.downUntil.Load(); until != 0 {
		if time.Now().UnixNano() < until {
			return ErrSkipped
		}
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	err := op(ctx)
	if err != nil && !errors.Is(err, redis.Nil) {
		if r.downUntil.Swap(time.Now().Add(r.cfg.RetryAfter).UnixNano()) == 0 {
			r.logger.LogAttrs(ctx, slog.LevelError, "redis unavailable; serving without the shared tier",
				slog.String("error", err.Error()), slog.Duration("retry_after", r.cfg.RetryAfter))
		}
		return err
	}
	if r.downUntil.Load() != 0 && r.downUntil.Swap(0) != 0 {
		r.logger.LogAttrs(ctx, slog.LevelInfo, "redis available again")
	}
	return err
}

// Get returns the entry of k.
func (r *Redis) Get(ctx context.Context, k Key) (Entry, bool, error) {
	raw, err := r.get(ctx, r.decisionKey(k))
	if errors.Is(err, redis.Nil) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, err
	}
	e, err := decodeEntry(raw)
	if err != nil {
		return Entry{}, false, err
	}
	if time.Until(e.keepUntil()) <= 0 {
		return Entry{}, false, nil
	}
	return e, true, nil
}

// Set stores e under k until it expires and, for an allow, indexes k under
// its user. If a purge of that user landed meanwhile, the entry is taken back.
func (r *Redis) Set(ctx context.Context, k Key, e Entry) error {
	ttl := time.Until(e.keepUntil())
	if ttl < time.Millisecond {
		return nil
	}
	d := e.Decision
	raw := encodeEntry(e)
	dk := r.decisionKey(k)
	return r.call(ctx, func(ctx context.Context) error {
		if err := r.client.Set(ctx, dk, raw, ttl).Err(); err != nil {
			return err
		}
		if !d.Allow {
			return nil
		}
		// Index after the write and check for a purge after indexing: a purge
		// either finds the key in the index or is seen here.
		var purged *redis.IntCmd
		_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			ik := r.indexKey(d.Identity.UserID)
			p.SAdd(ctx, ik, k.String())
			p.PExpire(ctx, ik, r.cfg.MaxTTL)
			purged = p.Exists(ctx, r.tombstoneKey(d.Identity.UserID))
			return nil
		})
		if err != nil {
			return err
		}
		if purged.Val() > 0 {
			return r.client.Del(ctx, dk).Err()
		}
		return nil
	})
}

// Delete removes k and tells every replica to drop it from memory.
func (r *Redis) Delete(ctx context.Context, k Key) error {
	return r.call(ctx, func(ctx context.Context) error {
		_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, r.decisionKey(k))
			p.Publish(ctx, r.channel(), purgeKeyPrefix+k.String())
			return nil
		})
		return err
	})
}

// DeleteUser removes every decision indexed under userID and marks the purge
// so that a miss in flight does not write its old answer back.
func (r *Redis) DeleteUser(ctx context.Context, userID string) error {
	return r.call(ctx, func(ctx context.Context) error {
		ik := r.indexKey(userID)
		var members *redis.StringSliceCmd
		_, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, r.tombstoneKey(userID), 1, r.cfg.TombstoneTTL)
			members = p.SMembers(ctx, ik)
			p.Del(ctx, ik)
			return nil
		})
		if err != nil {
			return err
		}
		// One DEL each: in a Cluster the keys live in different slots.
		_, err = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, m := range members.Val() {
				p.Del(ctx, r.cfg.Prefix+"d:"+m)
			}
			p.Publish(ctx, r.channel(), purgeUserPrefix+userID)
			return nil
		})
		return err
	})
}

// Purge messages on the channel: a user id or a key.
const (
	purgeUserPrefix = "u:"
	purgeKeyPrefix  = "k:"
)

func (r *Redis) channel() string { return r.cfg.Prefix + "purge" }

// Purge is a purge announced by some replica.
type Purge struct {
	UserID string // set for a purge of a user
	Key    Key    // otherwise
}

// Subscribe calls onMessage for every message any replica announces on the
// purge channel, and onSubscribed each time the subscription is
// (re)established, when messages may have been missed. It returns when ctx is
// done. go-redis reconnects by itself.
func (r *Redis) Subscribe(ctx context.Context, onMessage func(string), onSubscribed func()) {
	r.listening.Store(1)
	defer r.listening.Store(0)
	ps := r.client.Subscribe(ctx, r.channel())
	defer ps.Close()
	// Receive does not watch ctx: closing the subscription ends it.
	stop := context.AfterFunc(ctx, func() { ps.Close() })
	defer stop()
	for {
		msg, err := ps.Receive(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			r.listening.Store(1)
			// Receive reconnects on the next call; wait a little so that a
			// dead Redis does not spin this loop.
			select {
			case <-ctx.Done():
				return
			case <-time.After(r.cfg.RetryAfter + 100*time.Millisecond):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				onSubscribed()
				r.listening.Store(2)
			}
		case *redis.Message:
			onMessage(m.Payload)
		}
	}
}

// SubscriptionGauge is forwardauth_purge_subscription_up, read at each
// scrape: 0 while this replica does not listen for purges (it then misses
// other replicas' revocations and reports not ready).
func (r *Redis) SubscriptionGauge() prometheus.GaugeFunc {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "forwardauth_purge_subscription_up",
		Help: "1 while this replica listens on Redis for purges announced by the others, 0 while it does not.",
	}, func() float64 {
		if r.listening.Load() == 2 {
			return 1
		}
		return 0
	})
}

func parsePurge(s string) (Purge, bool) {
	switch {
	case strings.HasPrefix(s, purgeUserPrefix) && len(s) > len(purgeUserPrefix):
		return Purge{UserID: s[len(purgeUserPrefix):]}, true
	case strings.HasPrefix(s, purgeKeyPrefix):
		var k Key
		if b, err := hex.DecodeString(s[len(purgeKeyPrefix):]); err == nil && len(b) == len(k) {
			copy(k[:], b)
			return Purge{Key: k}, true
		}
	}
	return Purge{}, false
}

// Ping reports whether Redis answers and, when this replica listens for
// purges, whether it does yet: for readiness.
func (r *Redis) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, max(r.cfg.Timeout, 500*time.Millisecond))
	defer cancel()
	if err := r.client.Ping(ctx).Err(); err != nil {
		return err
	}
	if r.listening.Load() == 1 {
		return errors.New("not listening for purges yet")
	}
	return nil
}
