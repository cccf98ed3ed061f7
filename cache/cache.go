// Package cache answers who is behind a set of credentials from two tiers, an
// in-process one and an optional shared Redis, before asking Authgear; it
// coalesces concurrent misses and purges decisions when they stop being true.
package cache

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/singleflight"

	"github.com/authgear/authgear-forwardauth/internal/stripedcounter"
	"github.com/authgear/authgear-forwardauth/resolver"
	"github.com/authgear/authgear-forwardauth/tracing"
)

// Entry is a cached decision and when it stops being usable.
type Entry struct {
	Decision *resolver.Decision
	Expires  time.Time
	// StaleUntil, when after Expires, is how long an allow may still be
	// served while Authgear is failing (STALE_IF_ERROR).
	StaleUntil time.Time
}

// keepUntil is when a tier may forget the entry.
func (e Entry) keepUntil() time.Time {
	if e.StaleUntil.After(e.Expires) {
		return e.StaleUntil
	}
	return e.Expires
}

// Tier is one level of the cache. Both tiers pass the same test suite.
type Tier interface {
	Get(ctx context.Context, k Key) (Entry, bool, error)
	Set(ctx context.Context, k Key, e Entry) error
	Delete(ctx context.Context, k Key) error
	DeleteUser(ctx context.Context, userID string) error
}

// Resolver obtains a decision on a miss.
type Resolver interface {
	Resolve(ctx context.Context, req resolver.Request) (*resolver.Decision, error)
}

// Config sets how long decisions are kept.
type Config struct {
	TTL         time.Duration // an allow
	NegativeTTL time.Duration // a deny
	// FetchTimeout bounds a coalesced miss as a whole (shared tier and
	// resolver), since it no longer runs under any one request's context.
	FetchTimeout time.Duration
	// StaleIfError, when positive, serves an allow up to this long past its
	// TTL while Authgear is failing, marked stale.
	StaleIfError time.Duration
	// Clock is nil but in tests.
	Clock Clock
	// Tracer, when not nil, records the Redis lookup and the resolver call of
	// a miss as child spans, and the tier that answered on the caller's span.
	Tracer trace.Tracer
}

// Cache is the two-tier cache in front of the resolver.
type Cache struct {
	cfg      Config
	keyer    *Keyer
	local    *Local
	shared   Tier // nil without Redis
	resolver Resolver
	logger   *slog.Logger
	group    singleflight.Group
	// epoch changes on every purge; a miss that saw another epoch when it
	// started must not write its answer into the in-process tier.
	epoch atomic.Uint64

	hitsLocal, hitsShared, missLocal, missShared *stripedcounter.Counter // one per Decide
	coalesced, sharedErrors, staleServed         prometheus.Counter
}

// New returns a cache. shared may be nil (in-process only).
func New(cfg Config, keyer *Keyer, local *Local, shared Tier, r Resolver, logger *slog.Logger, reg prometheus.Registerer) *Cache {
	lookups := stripedcounter.NewCounterVec(prometheus.CounterOpts{
		Name: "forwardauth_cache_lookups_total",
		Help: "Cache lookups by tier (local, redis) and result (hit, miss).",
	}, []string{"tier", "result"})
	if cfg.Clock == nil {
		cfg.Clock = systemClock{}
	}
	c := &Cache{
		cfg: cfg, keyer: keyer, local: local, shared: shared, resolver: r, logger: logger,
		hitsLocal:  lookups.WithLabelValues("local", "hit"),
		missLocal:  lookups.WithLabelValues("local", "miss"),
		hitsShared: lookups.WithLabelValues("redis", "hit"),
		missShared: lookups.WithLabelValues("redis", "miss"),
		coalesced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "forwardauth_coalesced_waits_total",
			Help: "Requests that waited for another request's identical miss instead of calling Authgear.",
		}),
		sharedErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "forwardauth_cache_shared_errors_total",
			Help: "Errors or timeouts of the shared (Redis) tier; requests went on to the resolver.",
		}),
		staleServed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "forwardauth_stale_served_total",
			Help: "Allows served past their TTL because Authgear was failing (STALE_IF_ERROR).",
		}),
	}
	reg.MustRegister(lookups, c.coalesced, c.sharedErrors, c.staleServed)
	return c
}

// Key returns the cache key of a set of credentials.
func (c *Cache) Key(cr resolver.Credentials) Key { return c.keyer.Key(cr) }

// Decide answers req from the cache or, on a miss, from the resolver. An error
// means the answer is unknown (Authgear unavailable); it is never cached.
func (c *Cache) Decide(ctx context.Context, req resolver.Request) (*resolver.Decision, error) {
	k := c.keyer.Key(req.Credentials)
	if e, ok, _ := c.local.Get(ctx, k); ok {
		// Entries outlive their TTL only with STALE_IF_ERROR: only then is
		// the clock read on a hit.
		if c.cfg.StaleIfError <= 0 || e.Expires.After(c.cfg.Clock.Now()) {
			c.hitsLocal.Inc()
			if c.cfg.Tracer != nil {
				trace.SpanFromContext(ctx).SetAttributes(tierLocal...)
			}
			return e.Decision, nil
		}
		c.missLocal.Inc()
		stale := e // a copy, so that a hit's entry stays on the stack
		return c.miss(ctx, k, req, &stale)
	}
	c.missLocal.Inc()
	return c.miss(ctx, k, req, nil)
}

func (c *Cache) miss(ctx context.Context, k Key, req resolver.Request, stale *Entry) (*resolver.Decision, error) {
	led := false
	var f *flight // only for a traced request
	if c.cfg.Tracer != nil && trace.SpanContextFromContext(ctx).IsValid() {
		f = &flight{waitStart: time.Now()}
	}
	// Do, not DoChan: the leader works in its own goroutine instead of a new
	// one. The work is shared by every waiter, so one caller leaving must not
	// cancel it for the others, and FetchTimeout bounds everyone's wait.
	v, err, _ := c.group.Do(string(k[:]), func() (any, error) {
		led = true
		d, err := c.fetch(context.WithoutCancel(ctx), k, req, stale, f)
		if f != nil {
			f.d = d
			return f, err
		}
		return d, err
	})
	if !led {
		c.coalesced.Inc()
	}
	if c.cfg.Tracer != nil {
		v = c.traceMiss(ctx, v, led, f)
	}
	if err != nil {
		return nil, err
	}
	return v.(*resolver.Decision), nil
}

// fetch answers a miss from Redis or the resolver; f, when not nil, learns
// which one answered for the requests that waited.
func (c *Cache) fetch(ctx context.Context, k Key, req resolver.Request, stale *Entry, f *flight) (*resolver.Decision, error) {
	epoch := c.epoch.Load()
	// A leader that finished between our miss and our Do has stored its
	// answer: use it rather than ask again.
	if e, ok, _ := c.local.Get(ctx, k); ok && e.Expires.After(c.cfg.Clock.Now()) {
		if f != nil {
			f.tier = tracing.TierLocal
		}
		return e.Decision, nil
	}
	if c.shared != nil {
		gctx, span := f.start(ctx, c.cfg.Tracer, spanRedisGet)
		e, ok, err := c.shared.Get(gctx, k)
		switch {
		case err != nil:
			c.sharedError(ctx, "get", err)
			f.end(span, resultError, err)
		case ok && e.Expires.After(c.cfg.Clock.Now()):
			c.hitsShared.Inc()
			f.answered(span, tracing.TierRedis, resultHit)
			c.storeLocal(ctx, k, e, epoch)
			return e.Decision, nil
		case ok:
			c.missShared.Inc()
			f.end(span, resultMiss, nil)
			if stale == nil || e.Expires.After(stale.Expires) {
				stale = &e
			}
		default:
			c.missShared.Inc()
			f.end(span, resultMiss, nil)
		}
	}
	// Redis bounds its own operations; the deadline (and its timer) is for
	// the rest of a miss only.
	ctx, cancel := context.WithTimeout(ctx, c.cfg.FetchTimeout)
	defer cancel()
	rctx, span := f.start(ctx, c.cfg.Tracer, spanResolve)
	d, err := c.resolver.Resolve(rctx, req)
	f.resolved(span, d, err)
	if err != nil {
		if s := c.serveStale(ctx, stale, err); s != nil {
			return s, nil
		}
		return nil, err
	}
	e := c.entryFor(d)
	if c.shared != nil {
		if err := c.shared.Set(ctx, k, e); err != nil {
			c.sharedError(ctx, "set", err)
		}
	}
	c.storeLocal(ctx, k, e, epoch)
	return d, nil
}

// serveStale returns the allow of e, marked stale, when Authgear's failure
// (not a caller giving up) may be covered by STALE_IF_ERROR.
func (c *Cache) serveStale(ctx context.Context, e *Entry, err error) *resolver.Decision {
	if e == nil || !e.Decision.Allow || !errors.Is(err, resolver.ErrUnavailable) || !e.StaleUntil.After(c.cfg.Clock.Now()) {
		return nil
	}
	c.staleServed.Inc()
	c.logger.LogAttrs(ctx, slog.LevelWarn, "serving a stale allow while Authgear fails",
		slog.String("user_id", e.Decision.Identity.UserID), slog.String("error", err.Error()))
	d := *e.Decision
	d.Stale = true
	return &d
}

// entryFor decides how long d may be served: an allow for CACHE_TTL, a deny
// for CACHE_NEGATIVE_TTL, and never past the decision's own expiry.
func (c *Cache) entryFor(d *resolver.Decision) Entry {
	ttl := c.cfg.NegativeTTL
	if d.Allow {
		ttl = c.cfg.TTL
	}
	exp := c.cfg.Clock.Now().Add(ttl)
	if !d.Expires.IsZero() && d.Expires.Before(exp) {
		exp = d.Expires
	}
	e := Entry{Decision: d, Expires: exp}
	if d.Allow && c.cfg.StaleIfError > 0 {
		e.StaleUntil = exp.Add(c.cfg.StaleIfError)
		if !d.Expires.IsZero() && d.Expires.Before(e.StaleUntil) {
			e.StaleUntil = d.Expires // an expired token is never served
		}
	}
	return e
}

// storeLocal writes e unless a purge ran since the miss began. A purge landing
// between the check and the write is caught by the check after it.
func (c *Cache) storeLocal(ctx context.Context, k Key, e Entry, epoch uint64) {
	if c.epoch.Load() != epoch {
		return
	}
	_ = c.local.Set(ctx, k, e)
	if c.epoch.Load() != epoch {
		_ = c.local.Delete(ctx, k)
	}
}

// sharedError counts a Redis failure; the request goes on without it.
func (c *Cache) sharedError(ctx context.Context, op string, err error) {
	c.sharedErrors.Inc()
	if errors.Is(err, ErrSkipped) {
		return // already logged when the tier went down
	}
	c.logger.LogAttrs(ctx, slog.LevelWarn, "redis tier failed; going on without it",
		slog.String("op", op), slog.String("error", err.Error()))
}

// StartListening runs Listen in the background; the Redis tier reports not
// ready (Ping) until the subscription is up, so that no replica serves
// before it can hear of purges.
func StartListening(ctx context.Context, redis *Redis, deny *DenyList, caches ...Purgeable) {
	if redis == nil {
		return
	}
	redis.listening.Store(1)
	go Listen(ctx, redis, deny, caches...)
}

// Purgeable is an in-process cache that other replicas' purges reach: a
// Cache or a Verified.
type Purgeable interface {
	applyPurge(ctx context.Context, p Purge)
	clear()
}

// Listen applies the purges (and deny-list entries, when deny is not nil)
// announced by other replicas to this one's memory until ctx is done. The
// caches of one process share it. Without Redis it returns at once.
func Listen(ctx context.Context, redis *Redis, deny *DenyList, caches ...Purgeable) {
	if redis == nil {
		return
	}
	redis.Subscribe(ctx, func(msg string) {
		if p, ok := parsePurge(msg); ok {
			for _, c := range caches {
				c.applyPurge(ctx, p)
			}
			return
		}
		if deny != nil {
			deny.apply(msg)
		}
	}, func() {
		// What was announced while we were not listening is lost: drop every
		// decision rather than serve one that may have been revoked, and read
		// the deny list again.
		for _, c := range caches {
			c.clear()
		}
		if deny != nil {
			if err := deny.load(ctx); err != nil {
				redis.logger.LogAttrs(ctx, slog.LevelError, "could not load the deny list", slog.String("error", err.Error()))
			}
		}
		redis.logger.LogAttrs(ctx, slog.LevelInfo, "listening for purges; in-process cache cleared")
	})
}

func (c *Cache) clear() {
	c.epoch.Add(1)
	c.local.Clear()
}

func (c *Cache) applyPurge(ctx context.Context, p Purge) {
	c.epoch.Add(1)
	if p.UserID != "" {
		_ = c.local.DeleteUser(ctx, p.UserID)
	} else {
		_ = c.local.Delete(ctx, p.Key)
	}
}

// PurgeCredentials removes the decision for one set of credentials, given as
// the app received them.
func (c *Cache) PurgeCredentials(ctx context.Context, cr resolver.Credentials) error {
	return c.PurgeKey(ctx, c.keyer.Key(cr))
}

// PurgeKey removes the decision for one set of credentials from every tier.
func (c *Cache) PurgeKey(ctx context.Context, k Key) error {
	c.epoch.Add(1)
	_ = c.local.Delete(ctx, k)
	if c.shared != nil {
		return c.shared.Delete(ctx, k)
	}
	return nil
}

// PurgeUser removes every allow of userID from every tier.
func (c *Cache) PurgeUser(ctx context.Context, userID string) error {
	c.epoch.Add(1)
	_ = c.local.DeleteUser(ctx, userID)
	if c.shared != nil {
		return c.shared.DeleteUser(ctx, userID)
	}
	return nil
}
