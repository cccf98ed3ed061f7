package cache

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgear/authgear-forwardauth/resolver"
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
}

// NewRedis returns the Redis tier over client.
func NewRedis(client redis.UniversalClient, cfg RedisConfig, logger *slog.Logger) *Redis {
	return &Redis{client: client, cfg: cfg, logger: logger}
}

// wireEntry is how a decision is stored: the decision itself, never the raw
// resolver headers.
type wireEntry struct {
	Allow     bool     `json:"a"`
	UserID    string   `json:"u,omitempty"`
	Anonymous bool     `json:"an,omitempty"`
	Verified  bool     `json:"v,omitempty"`
	CanReauth bool     `json:"r,omitempty"`
	Roles     []string `json:"ro,omitempty"`
	AMR       []string `json:"am,omitempty"`
	AuthAt    int64    `json:"at,omitempty"`
	Expires   int64    `json:"x"`           // of the entry, unix milliseconds
	Stale     int64    `json:"s,omitempty"` // StaleUntil, unix milliseconds
}

func (r *Redis) decisionKey(k Key) string { return r.cfg.Prefix + "d:" + k.String() }

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
	var raw []byte
	err := r.call(ctx, func(ctx context.Context) error {
		var err error
		raw, err = r.client.Get(ctx, r.decisionKey(k)).Bytes()
		return err
	})
	if errors.Is(err, redis.Nil) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, err
	}
	var w wireEntry
	if err := json.Unmarshal(raw, &w); err != nil {
		return Entry{}, false, fmt.Errorf("decoding cached decision: %w", err)
	}
	e := Entry{Expires: time.UnixMilli(w.Expires)}
	if w.Stale != 0 {
		e.StaleUntil = time.UnixMilli(w.Stale)
	}
	if time.Until(e.keepUntil()) <= 0 {
		return Entry{}, false, nil
	}
	if !w.Allow {
		e.Decision = resolver.Deny()
		return e, true, nil
	}
	e.Decision = resolver.Allow(resolver.Identity{
		UserID: w.UserID, Anonymous: w.Anonymous, Verified: w.Verified, CanReauthenticate: w.CanReauth,
		Roles: w.Roles, AMR: w.AMR, AuthenticatedAt: w.AuthAt,
	}, e.Expires)
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
	w := wireEntry{Allow: d.Allow, Expires: e.Expires.UnixMilli()}
	if !e.StaleUntil.IsZero() {
		w.Stale = e.StaleUntil.UnixMilli()
	}
	if d.Allow {
		id := d.Identity
		w.UserID, w.Anonymous, w.Verified, w.CanReauth = id.UserID, id.Anonymous, id.Verified, id.CanReauthenticate
		w.Roles, w.AMR, w.AuthAt = id.Roles, id.AMR, id.AuthenticatedAt
	}
	raw, err := json.Marshal(w)
	if err != nil {
		return err
	}
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
