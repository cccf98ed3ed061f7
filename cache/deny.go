package cache

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgear/authgear-forwardauth/resolver"
)

// DenyList blocks JWT access tokens that a local check would still accept:
// every token of a user issued up to their revocation, and single tokens by
// jti. Each entry lives until the longest token it could block has expired,
// and is shared with every replica through Redis.
type DenyList struct {
	maxLifetime time.Duration
	redis       *Redis // nil without Redis
	clock       Clock
	logger      *slog.Logger

	mu sync.Mutex // serialises writers; readers load snap
	// snap is replaced whole on every change, so that the hot path reads
	// it without a lock.
	snap atomic.Pointer[denySnapshot]
}

type denySnapshot struct {
	users map[string]time.Time // user id -> end of the entry; revoked at end - maxLifetime
	jtis  map[string]time.Time // jti -> the token's exp
}

// NewDenyList returns a deny list whose user entries last maxLifetime (at
// least the project's access token lifetime). redis may be nil.
func NewDenyList(maxLifetime time.Duration, redis *Redis, clock Clock, logger *slog.Logger) *DenyList {
	if clock == nil {
		clock = systemClock{}
	}
	d := &DenyList{maxLifetime: maxLifetime, redis: redis, clock: clock, logger: logger}
	d.snap.Store(&denySnapshot{users: map[string]time.Time{}, jtis: map[string]time.Time{}})
	return d
}

// Blocks reports whether a locally verified token is revoked.
func (d *DenyList) Blocks(dec *resolver.Decision) bool {
	s := d.snap.Load()
	if len(s.users) == 0 && len(s.jtis) == 0 {
		return false
	}
	now := d.clock.Now()
	if end, ok := s.users[dec.Identity.UserID]; ok && now.Before(end) {
		revokedAt := end.Add(-d.maxLifetime)
		// A token without iat cannot show it came after: blocked.
		if dec.IssuedAt.IsZero() || !dec.IssuedAt.After(revokedAt) {
			return true
		}
	}
	if dec.TokenID != "" {
		if end, ok := s.jtis[dec.TokenID]; ok && now.Before(end) {
			return true
		}
	}
	return false
}

// DenyUser blocks every token of userID issued until now.
func (d *DenyList) DenyUser(ctx context.Context, userID string) error {
	end := d.clock.Now().Add(d.maxLifetime)
	d.add(userID, "", end)
	return d.share(ctx, "u", userID, end)
}

// DenyToken blocks one token until its exp.
func (d *DenyList) DenyToken(ctx context.Context, jti string, exp time.Time) error {
	if jti == "" || !exp.After(d.clock.Now()) {
		return nil // nothing to block, or it has expired already
	}
	d.add("", jti, exp)
	return d.share(ctx, "j", jti, exp)
}

// add records an entry, keeping the later end, and drops expired ones.
func (d *DenyList) add(user, jti string, end time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.snap.Load()
	now := d.clock.Now()
	next := &denySnapshot{users: make(map[string]time.Time, len(old.users)+1), jtis: make(map[string]time.Time, len(old.jtis)+1)}
	for k, v := range old.users {
		if now.Before(v) {
			next.users[k] = v
		}
	}
	for k, v := range old.jtis {
		if now.Before(v) {
			next.jtis[k] = v
		}
	}
	if user != "" && end.After(next.users[user]) {
		next.users[user] = end
	}
	if jti != "" && end.After(next.jtis[jti]) {
		next.jtis[jti] = end
	}
	d.snap.Store(next)
}

// Redis holds the deny list in two sorted sets scored by the entry's end
// (one key each, so one slot in a Cluster), and announces each entry on the
// purge channel as "d{u|j}:{end ms}:{id}".
func (d *DenyList) setKey(kind string) string { return d.redis.cfg.Prefix + "deny:" + kind }

func (d *DenyList) share(ctx context.Context, kind, id string, end time.Time) error {
	if d.redis == nil {
		return nil
	}
	ms := end.UnixMilli()
	return d.redis.call(ctx, func(ctx context.Context) error {
		_, err := d.redis.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			key := d.setKey(kind)
			p.ZAddGT(ctx, key, redis.Z{Score: float64(ms), Member: id})
			p.ZRemRangeByScore(ctx, key, "-inf", strconv.FormatInt(d.clock.Now().UnixMilli(), 10))
			p.PExpire(ctx, key, d.maxLifetime+time.Minute)
			p.Publish(ctx, d.redis.channel(), "d"+kind+":"+strconv.FormatInt(ms, 10)+":"+id)
			return nil
		})
		return err
	})
}

// apply takes an entry announced by a replica; false if msg is not one.
func (d *DenyList) apply(msg string) bool {
	rest, ok := strings.CutPrefix(msg, "d")
	if !ok || len(rest) < 3 || rest[1] != ':' {
		return false
	}
	kind := rest[0]
	msStr, id, ok := strings.Cut(rest[2:], ":")
	ms, err := strconv.ParseInt(msStr, 10, 64)
	if !ok || err != nil || id == "" {
		return false
	}
	switch kind {
	case 'u':
		d.add(id, "", time.UnixMilli(ms))
	case 'j':
		d.add("", id, time.UnixMilli(ms))
	default:
		return false
	}
	return true
}

// load reads the whole shared deny list, for a replica that starts or may
// have missed announcements.
func (d *DenyList) load(ctx context.Context) error {
	if d.redis == nil {
		return nil
	}
	now := strconv.FormatInt(d.clock.Now().UnixMilli(), 10)
	for _, kind := range []string{"u", "j"} {
		var entries []redis.Z
		err := d.redis.call(ctx, func(ctx context.Context) error {
			var err error
			entries, err = d.redis.client.ZRangeByScoreWithScores(ctx, d.setKey(kind), &redis.ZRangeBy{Min: "(" + now, Max: "+inf"}).Result()
			return err
		})
		if err != nil {
			return err
		}
		for _, z := range entries {
			id, _ := z.Member.(string)
			end := time.UnixMilli(int64(z.Score))
			if kind == "u" {
				d.add(id, "", end)
			} else {
				d.add("", id, end)
			}
		}
	}
	return nil
}
