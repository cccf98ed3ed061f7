package assertion

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgear/authgear-forwardauth/resolver"
)

// Authgear's own claim names, so that an application that reads Authgear's
// access tokens reads these the same way.
const (
	ClaimRoles             = "https://authgear.com/claims/user/roles"
	ClaimIsAnonymous       = "https://authgear.com/claims/user/is_anonymous"
	ClaimIsVerified        = "https://authgear.com/claims/user/is_verified"
	ClaimCanReauthenticate = "https://authgear.com/claims/user/can_reauthenticate"
)

// DefaultIssuer is iss when ASSERTION_ISSUER is not set: the name of this
// service, distinct from Authgear's own issuer (the project origin), so that
// nobody can mistake an assertion for an Authgear access token.
const DefaultIssuer = "authgear-forwardauth"

// Bounds of the token lifetime.
const (
	MinTTL = 10 * time.Second
	MaxTTL = time.Hour
)

const (
	// maxRefreshMargin: a token is replaced when it has less than this left
	// (or a quarter of the TTL, when that is less), so that an application
	// never receives one about to expire.
	maxRefreshMargin = 30 * time.Second
	// maxAudiences bounds the tokens kept per decision (one per host that
	// the same credentials reach, e.g. apps sharing a parent-domain cookie).
	maxAudiences = 8
	// tick is how often the coarse clock of the hit path moves; far less
	// than any refresh margin.
	tick = 250 * time.Millisecond
	// capSlack: a token that ends with its decision is not handed out in
	// its last second (the hit path's clock moves every tick).
	capSlack = time.Second
	// sweepEvery is how often tokens due for refresh are forgotten, which
	// frees those of decisions no cache holds any more.
	sweepEvery = 30 * time.Second
)

// Clock tells the time; tests move theirs by hand.
type Clock interface {
	Now() time.Time
}

// Config is what an Issuer signs and how long its tokens live.
type Config struct {
	Keys   *Keys
	Issuer string        // iss; DefaultIssuer when empty
	TTL    time.Duration // exp - iat, at most; within [MinTTL, MaxTTL]
	// MaxDecisions bounds the decisions whose tokens are kept; past it every
	// kept token is forgotten (and signed again when next needed).
	MaxDecisions int
	// Clock is nil but in tests: then time is read on every use instead of
	// from a clock that moves every 250 ms.
	Clock Clock
}

// Issuer signs assertions and keeps each for reuse, found first through the
// decision it was signed for (a pointer: cheap on every hit), then, when the
// cache holds a new decision saying the same (reloaded from Redis, served
// stale), through what it says. DropUser forgets a user's tokens at once.
type Issuer struct {
	keys   *Keys
	iss    string
	ttl    time.Duration
	margin time.Duration
	max    int64
	clock  Clock // nil: the coarse clock
	coarse atomic.Int64

	byDecision table // *resolver.Decision -> *memo
	byContent  table // contentKey -> *shared
	// epoch changes on every DropUser; a token signed across one is not kept.
	epoch atomic.Uint64
	// gen changes on every purge; byContent entries of an older one are
	// not reused.
	gen atomic.Uint64

	signed, signErrors prometheus.Counter
}

// memo holds the tokens of one decision.
type memo struct {
	mu   sync.Mutex // held while signing, so concurrent requests sign once
	list atomic.Pointer[[]token]
}

// token is one signed assertion; immutable once stored.
type token struct {
	aud       string
	value     []string // the header value, shared by every response
	refreshAt int64    // Unix ns: sign another from then on
	exp       int64    // Unix ns
}

// shared is a token found by what it asserts.
type shared struct {
	t    token
	user string
	gen  uint64
}

// table is a sync.Map that counts its entries.
type table struct {
	m sync.Map
	n atomic.Int64
}

func (t *table) load(k any) (any, bool) { return t.m.Load(k) }

func (t *table) loadOrStore(k, v any) any {
	a, loaded := t.m.LoadOrStore(k, v)
	if !loaded {
		t.n.Add(1)
	}
	return a
}

func (t *table) store(k, v any) {
	if _, loaded := t.m.Swap(k, v); !loaded {
		t.n.Add(1)
	}
}

func (t *table) deleteIf(k, v any) {
	if t.m.CompareAndDelete(k, v) {
		t.n.Add(-1)
	}
}

// deleteWhere removes the entries f picks.
func (t *table) deleteWhere(f func(k, v any) bool) {
	t.m.Range(func(k, v any) bool {
		if f(k, v) {
			t.deleteIf(k, v)
		}
		return true
	})
}

// New returns an Issuer; its clock and clean-ups run until ctx is done.
func New(ctx context.Context, cfg Config, reg prometheus.Registerer) (*Issuer, error) {
	if cfg.Keys == nil {
		return nil, errors.New("assertion: no keys")
	}
	if cfg.TTL < MinTTL || cfg.TTL > MaxTTL {
		return nil, errors.New("assertion: TTL out of bounds")
	}
	if cfg.Issuer == "" {
		cfg.Issuer = DefaultIssuer
	}
	if cfg.MaxDecisions <= 0 {
		cfg.MaxDecisions = 100_000
	}
	i := &Issuer{
		keys: cfg.Keys, iss: cfg.Issuer, ttl: cfg.TTL, margin: min(cfg.TTL/4, maxRefreshMargin),
		max: int64(cfg.MaxDecisions), clock: cfg.Clock,
		signed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "forwardauth_assertions_signed_total",
			Help: "JWT assertions signed (each is reused for its decision and audience until shortly before it expires).",
		}),
		signErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "forwardauth_assertion_errors_total",
			Help: "JWT assertions that could not be signed (the request was answered 500).",
		}),
	}
	reg.MustRegister(i.signed, i.signErrors)
	i.coarse.Store(time.Now().UnixNano())
	if cfg.Clock == nil {
		go i.run(ctx)
	}
	return i, nil
}

// run moves the coarse clock and sweeps until ctx is done.
func (i *Issuer) run(ctx context.Context) {
	t := time.NewTicker(tick)
	defer t.Stop()
	lastSweep := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := time.Now()
			i.coarse.Store(now.UnixNano())
			if now.Sub(lastSweep) >= sweepEvery {
				lastSweep = now
				i.sweep(now.UnixNano())
			}
		}
	}
}

// now is the hit path's clock: a load, not a clock read.
func (i *Issuer) now() int64 {
	if i.clock != nil {
		return i.clock.Now().UnixNano()
	}
	return i.coarse.Load()
}

func (i *Issuer) exactNow() time.Time {
	if i.clock != nil {
		return i.clock.Now()
	}
	return time.Now()
}

// Assertion returns the header value carrying a token that asserts the
// identity of the allow d to audience (the original request's host), signed
// once and then reused until shortly before it expires. It returns nil, and
// no error, when d cannot be asserted (not an allow, or already expired).
// The value is shared between responses and must not be modified.
func (i *Issuer) Assertion(d *resolver.Decision, audience string) ([]string, error) {
	if v, ok := i.byDecision.load(d); ok {
		if l := v.(*memo).list.Load(); l != nil {
			now := i.now()
			for j := range *l {
				if t := &(*l)[j]; t.aud == audience && now < t.refreshAt {
					return t.value, nil
				}
			}
		}
	}
	return i.slow(d, audience)
}

// slow finds a token saying the same as d for audience, or signs one, and
// keeps it for d.
func (i *Issuer) slow(d *resolver.Decision, audience string) ([]string, error) {
	if !d.Allow || audience == "" || (!d.Expires.IsZero() && !d.Expires.After(i.exactNow())) {
		return nil, nil
	}
	v, ok := i.byDecision.load(d)
	if !ok {
		if i.byDecision.n.Load() >= i.max {
			i.clear()
		}
		v = i.byDecision.loadOrStore(d, &memo{})
	}
	m := v.(*memo)
	epoch, gen := i.epoch.Load(), i.gen.Load()
	m.mu.Lock()
	defer m.mu.Unlock()
	now := i.exactNow()
	nowNs := now.UnixNano()
	var old []token
	if l := m.list.Load(); l != nil {
		old = *l
	}
	for _, t := range old {
		if t.aud == audience && nowNs < t.refreshAt {
			return t.value, nil // signed while this request waited
		}
	}
	key := contentKey(d, audience)
	var t token
	var s *shared
	if v, ok := i.byContent.load(key); ok && v.(*shared).gen == gen && nowNs < v.(*shared).t.refreshAt {
		t = v.(*shared).t
	} else {
		var err error
		if t, err = i.signFor(d, audience, now); err != nil || t.value == nil {
			if m.list.Load() == nil {
				i.byDecision.deleteIf(d, m)
			}
			return nil, err
		}
		if i.byContent.n.Load() >= i.max {
			i.clear()
		}
		s = &shared{t: t, user: d.Identity.UserID, gen: gen}
		i.byContent.store(key, s)
	}
	// Copy on write: readers hold the old list without a lock.
	list := make([]token, 0, min(len(old)+1, maxAudiences))
	list = append(list, t)
	for _, o := range old {
		if o.aud != audience && nowNs < o.exp && len(list) < maxAudiences {
			list = append(list, o)
		}
	}
	m.list.Store(&list)
	if i.epoch.Load() != epoch {
		// A purge ran meanwhile: this request gets its token, nobody else.
		i.byDecision.deleteIf(d, m)
		if s != nil {
			i.byContent.deleteIf(key, s)
		}
	}
	return t.value, nil
}

// signFor signs a token of d for audience; its value is nil when d ends
// too soon for one to be worth handing out.
func (i *Issuer) signFor(d *resolver.Decision, audience string, now time.Time) (token, error) {
	exp := now.Add(i.ttl).Truncate(time.Second)
	refreshAt := exp.Add(-i.margin)
	if !d.Expires.IsZero() && d.Expires.Before(now.Add(i.ttl)) {
		// Never outlive the decision (a JWT access token's exp). Another
		// token would end at the same time, so this one serves to the end,
		// less a second: the hit path's clock may lag by a tick.
		exp = d.Expires.Truncate(time.Second)
		refreshAt = exp.Add(-capSlack)
	}
	if !refreshAt.After(now) {
		return token{}, nil
	}
	raw, err := i.mint(d, audience, now, exp)
	if err != nil {
		i.signErrors.Inc()
		return token{}, err
	}
	i.signed.Inc()
	return token{aud: audience, value: []string{raw}, exp: exp.UnixNano(), refreshAt: refreshAt.UnixNano()}, nil
}

// contentKey is everything a token of d for audience asserts but its iat,
// exp and jti, each part length-prefixed.
func contentKey(d *resolver.Decision, audience string) string {
	id := d.Identity
	b := make([]byte, 0, 128)
	str := func(s string) {
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, ':')
		b = append(b, s...)
	}
	str(audience)
	str(id.UserID)
	b = strconv.AppendBool(b, id.Anonymous)
	b = strconv.AppendBool(b, id.Verified)
	b = strconv.AppendBool(b, id.CanReauthenticate)
	b = strconv.AppendInt(b, int64(len(id.Roles)), 10)
	for _, r := range id.Roles {
		str(r)
	}
	b = strconv.AppendInt(b, int64(len(id.AMR)), 10)
	for _, a := range id.AMR {
		str(a)
	}
	b = append(b, '/')
	b = strconv.AppendInt(b, id.AuthenticatedAt, 10)
	b = append(b, '/')
	if !d.Expires.IsZero() {
		b = strconv.AppendInt(b, d.Expires.UnixNano(), 10)
	}
	return string(b)
}

// claims is the payload of an assertion. Roles is always present (an empty
// array when the user has none), so that a role mapping never meets a null.
type claims struct {
	Iss               string   `json:"iss"`
	Aud               string   `json:"aud"`
	Sub               string   `json:"sub"`
	Iat               int64    `json:"iat"`
	Exp               int64    `json:"exp"`
	Jti               string   `json:"jti"`
	AuthTime          int64    `json:"auth_time,omitempty"`
	AMR               []string `json:"amr"`
	Roles             []string `json:"https://authgear.com/claims/user/roles"`
	IsAnonymous       bool     `json:"https://authgear.com/claims/user/is_anonymous"`
	IsVerified        bool     `json:"https://authgear.com/claims/user/is_verified"`
	CanReauthenticate bool     `json:"https://authgear.com/claims/user/can_reauthenticate"`
}

// mint signs one token with the first key of the set.
func (i *Issuer) mint(d *resolver.Decision, audience string, iat, exp time.Time) (string, error) {
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", err
	}
	id := d.Identity
	c := claims{
		Iss: i.iss, Aud: audience, Sub: id.UserID,
		Iat: iat.Unix(), Exp: exp.Unix(), Jti: base64.RawURLEncoding.EncodeToString(jti[:]),
		AuthTime: id.AuthenticatedAt, AMR: id.AMR, Roles: id.Roles,
		IsAnonymous: id.Anonymous, IsVerified: id.Verified, CanReauthenticate: id.CanReauthenticate,
	}
	if c.Roles == nil {
		c.Roles = []string{}
	}
	if c.AMR == nil {
		c.AMR = []string{}
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	h := jws.NewHeaders()
	if err := h.Set(jws.KeyIDKey, i.keys.kid); err != nil {
		return "", err
	}
	if err := h.Set(jws.TypeKey, "JWT"); err != nil {
		return "", err
	}
	b, err := jws.Sign(payload, jws.WithKey(i.keys.alg, i.keys.signer, jws.WithProtectedHeaders(h)))
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// DropUser forgets every token signed for userID (a purge of the user).
func (i *Issuer) DropUser(userID string) {
	i.epoch.Add(1)
	i.gen.Add(1)
	i.byDecision.deleteWhere(func(k, _ any) bool { return k.(*resolver.Decision).Identity.UserID == userID })
	i.byContent.deleteWhere(func(_, v any) bool { return v.(*shared).user == userID })
}

// Purged is told of a purge of one set of credentials, whose user is not
// known: their decision is gone, so are its tokens; no other decision may
// take one of them over by saying the same.
func (i *Issuer) Purged() { i.gen.Add(1) }

// sweep forgets the tokens due for refresh: their decision is gone from
// the cache, or its next request signs anew.
func (i *Issuer) sweep(now int64) {
	i.byDecision.deleteWhere(func(_, v any) bool {
		l := v.(*memo).list.Load()
		if l == nil {
			return false // being signed
		}
		for _, t := range *l {
			if now < t.refreshAt {
				return false
			}
		}
		return true
	})
	gen := i.gen.Load()
	i.byContent.deleteWhere(func(_, v any) bool {
		s := v.(*shared)
		return s.gen != gen || now >= s.t.refreshAt
	})
}

// clear forgets every token (a bound was reached).
func (i *Issuer) clear() {
	i.epoch.Add(1)
	i.byDecision.deleteWhere(func(_, _ any) bool { return true })
	i.byContent.deleteWhere(func(_, _ any) bool { return true })
}

// held reports how many tokens are kept for d (tests).
func (i *Issuer) held(d *resolver.Decision) int {
	v, ok := i.byDecision.load(d)
	if !ok {
		return 0
	}
	if l := v.(*memo).list.Load(); l != nil {
		return len(*l)
	}
	return 0
}
