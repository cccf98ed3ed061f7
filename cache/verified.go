package cache

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/authgear/authgear-forwardauth/internal/stripedcounter"
	"github.com/authgear/authgear-forwardauth/resolver"
)

// verifiedOverhead is roughly what an entry costs besides its token (the
// decision, its rendered headers, the table's node), for the byte bound.
const verifiedOverhead = 256

// Verified holds the answers of local JWT verification in process, keyed by
// the token itself: the map compares the whole token byte for byte, and its
// hash (the runtime's fast, per-process seeded one) only picks a bucket. Two
// different tokens therefore never share an entry, and a hit costs a hash and
// a comparison at memory speed instead of a keyed SHA-256 over a 1 KiB token.
// Nothing here ever goes to Redis: the tokens stay in this process's memory,
// where requests carry them anyway, and leave it with their entries.
type Verified struct {
	c      *otter.Cache[string, Entry]
	cfg    Config
	verify Resolver
	group  singleflight.Group
	// epoch changes on every purge, as in Cache.
	epoch atomic.Uint64

	hits, misses *stripedcounter.Counter // one per Lookup
	coalesced    prometheus.Counter
}

// NewVerified returns a cache in front of verify (a resolver.JWTResolver)
// holding at most about maxBytes of tokens and entries. cfg.TTL bounds an
// allow (never past the token's exp), cfg.NegativeTTL a refusal.
func NewVerified(maxBytes uint64, cfg Config, verify Resolver, reg prometheus.Registerer) *Verified {
	if cfg.Clock == nil {
		cfg.Clock = systemClock{}
	}
	opts := &otter.Options[string, Entry]{
		MaximumWeight: max(maxBytes, 1),
		Weigher: func(k string, _ Entry) uint32 {
			return uint32(min(len(k)+verifiedOverhead, 1<<31))
		},
		// otter reads its clock on every lookup and drops an entry at its
		// expiry: an allow is never served at or after the token's exp.
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, Entry]) time.Duration {
			return e.Value.Expires.Sub(cfg.Clock.Now())
		}),
	}
	if _, ok := cfg.Clock.(systemClock); !ok {
		opts.Clock = otterClock{cfg.Clock}
	}
	lookups := stripedcounter.NewCounterVec(prometheus.CounterOpts{
		Name: "forwardauth_cache_lookups_total",
		Help: "Cache lookups by tier (local, redis) and result (hit, miss).",
	}, []string{"tier", "result"})
	v := &Verified{
		c: otter.Must(opts), cfg: cfg, verify: verify,
		hits:   lookups.WithLabelValues("local", "hit"),
		misses: lookups.WithLabelValues("local", "miss"),
		coalesced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "forwardauth_coalesced_waits_total",
			Help: "Requests that waited for another request's identical miss instead of calling Authgear.",
		}),
	}
	reg.MustRegister(lookups, v.coalesced)
	return v
}

// Lookup returns the answer held for exactly token, without verifying
// anything on a miss. A token found here was verified by this process, so it
// is well formed: the caller needs no other check of it.
func (v *Verified) Lookup(token string) (*resolver.Decision, bool) {
	e, ok := v.c.GetIfPresent(token)
	if !ok {
		return nil, false
	}
	v.hits.Inc()
	return e.Decision, true
}

// Decide answers req.Bearer from memory or by verifying it; concurrent misses
// for one token share a verification. An error means the answer is unknown
// (no signing keys yet); it is never kept.
func (v *Verified) Decide(ctx context.Context, req resolver.Request) (*resolver.Decision, error) {
	token := req.Bearer
	if e, ok := v.c.GetIfPresent(token); ok {
		v.hits.Inc()
		return e.Decision, nil
	}
	v.misses.Inc()
	led := false
	d, err, _ := v.group.Do(token, func() (any, error) {
		led = true
		epoch := v.epoch.Load()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.cfg.FetchTimeout)
		defer cancel()
		d, err := v.verify.Resolve(ctx, resolver.Request{Credentials: resolver.Credentials{Bearer: token}})
		if err != nil {
			return nil, err
		}
		v.store(token, d, epoch)
		return d, nil
	})
	if !led {
		v.coalesced.Inc()
	}
	if err != nil {
		return nil, err
	}
	return d.(*resolver.Decision), nil
}

// store keeps d unless a purge ran since the verification began.
func (v *Verified) store(token string, d *resolver.Decision, epoch uint64) {
	ttl := v.cfg.NegativeTTL
	if d.Allow {
		ttl = v.cfg.TTL
	}
	exp := v.cfg.Clock.Now().Add(ttl)
	if !d.Expires.IsZero() && d.Expires.Before(exp) {
		exp = d.Expires
	}
	if !exp.After(v.cfg.Clock.Now()) || v.epoch.Load() != epoch {
		return
	}
	v.c.Set(token, Entry{Decision: d, Expires: exp})
	if v.epoch.Load() != epoch {
		v.c.Invalidate(token)
	}
}

// PurgeToken forgets the answer for token.
func (v *Verified) PurgeToken(_ context.Context, token string) error {
	v.epoch.Add(1)
	v.c.Invalidate(token)
	return nil
}

// PurgeUser forgets every allow of userID (a walk: purges are rare).
func (v *Verified) PurgeUser(_ context.Context, userID string) error {
	v.epoch.Add(1)
	for k, e := range v.c.All() {
		if e.Decision.Allow && e.Decision.Identity.UserID == userID {
			v.c.Invalidate(k)
		}
	}
	return nil
}

// applyPurge applies another replica's purge. A purge by key names a set of
// credentials whose token cannot be recovered from it; the purging replica
// deny-lists a JWT among them by jti, which reaches this tier's hits.
func (v *Verified) applyPurge(ctx context.Context, p Purge) {
	v.epoch.Add(1)
	if p.UserID != "" {
		_ = v.PurgeUser(ctx, p.UserID)
	}
}

func (v *Verified) clear() {
	v.epoch.Add(1)
	v.c.InvalidateAll()
}

// Len is the approximate number of entries.
func (v *Verified) Len() int { return v.c.EstimatedSize() }
