// Package perclient gives each client a budget of calls to Authgear's
// resolver: a flood of new credentials from one address is refused (429)
// before it reaches Authgear, and the calls it may still make wait their
// turn with everyone else's (resolver.Guard queues clients fairly).
package perclient

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgear/authgear-forwardauth/resolver"
)

// Config is the budget of each client.
type Config struct {
	// Rate is how many resolver calls a client may make per second on
	// average, Burst how many at once; a Rate of 0 turns the budget off
	// (clients are still told apart for fair queueing).
	Rate  float64
	Burst int
	// TrustedProxies may say who the client is (X-Forwarded-For,
	// X-Real-IP); anyone else is the client.
	TrustedProxies []netip.Prefix
	// MaxClients bounds the table of budgets; a client pushed out (the least
	// recently active go first) comes back with a full budget. 0: 100,000.
	MaxClients int
	// Clock is nil but in tests.
	Clock Clock
}

// Clock tells the time; tests move theirs by hand.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// DefaultMaxClients is the table's size when Config.MaxClients is 0: a few
// tens of bytes of budget and a table node each, some 20 MB in all.
const DefaultMaxClients = 100_000

// logEvery is how often a client over budget is logged at most.
const logEvery = time.Minute

// OverBudgetError is a call refused because its client spent its budget;
// RetryAfter is when it may try again.
type OverBudgetError struct {
	Client netip.Prefix
	After  time.Duration
}

func (e *OverBudgetError) Error() string {
	return fmt.Sprintf("client %s is over its budget of resolver calls; retry after %s", e.Client, e.After)
}

// RetryAfter is how long until the client has budget again.
func (e *OverBudgetError) RetryAfter() time.Duration { return e.After }

// Resolver is a resolver.Resolver that charges each call to its client. It
// sits right in front of the Guard, so only calls that would reach Authgear
// are charged: cached answers, coalesced waits and credentials refused by
// shape never come here.
type Resolver struct {
	next    resolver.Resolver
	cfg     Config
	table   *otter.Cache[netip.Prefix, *bucket]
	logger  *slog.Logger
	refused prometheus.Counter
}

type bucket struct {
	mu       sync.Mutex
	tokens   float64
	last     time.Time
	loggedAt time.Time
}

// New wraps next. refused counts the calls refused
// (forwardauth_resolver_rejected_total{reason="client_rate"}).
func New(next resolver.Resolver, cfg Config, logger *slog.Logger, refused prometheus.Counter) *Resolver {
	if cfg.Clock == nil {
		cfg.Clock = systemClock{}
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = DefaultMaxClients
	}
	cfg.Burst = max(cfg.Burst, 1)
	r := &Resolver{next: next, cfg: cfg, logger: logger, refused: refused}
	if cfg.Rate > 0 {
		// A budget left alone refills in Burst/Rate; kept at least a minute
		// so that "logged at most once a minute" holds.
		idle := max(time.Duration(float64(cfg.Burst)/cfg.Rate*float64(time.Second)), logEvery)
		opts := &otter.Options[netip.Prefix, *bucket]{
			MaximumSize:      cfg.MaxClients,
			ExpiryCalculator: otter.ExpiryAccessing[netip.Prefix, *bucket](idle),
		}
		if _, ok := cfg.Clock.(systemClock); !ok {
			opts.Clock = otterClock{cfg.Clock}
		}
		r.table = otter.Must(opts)
	}
	return r
}

// Resolve calls next unless req's client is over its budget.
func (r *Resolver) Resolve(ctx context.Context, req resolver.Request) (*resolver.Decision, error) {
	req.Client = ClientOf(req.Peer, req.Header, r.cfg.TrustedProxies)
	if r.table != nil {
		if wait, log := r.spend(req.Client); wait > 0 {
			r.refused.Inc()
			if log {
				// The client's address, never its credentials.
				r.logger.LogAttrs(ctx, slog.LevelWarn, "client over its budget of resolver calls; answering 429 (logged once a minute)",
					slog.String("client", req.Client.String()), slog.Duration("retry_after", wait))
			}
			return nil, &OverBudgetError{Client: req.Client, After: wait}
		}
	}
	return r.next.Resolve(ctx, req)
}

// spend takes one call from client's budget; when there is none, wait is
// how long until there is, and log says whether to log it this time.
func (r *Resolver) spend(client netip.Prefix) (wait time.Duration, log bool) {
	now := r.cfg.Clock.Now()
	b, ok := r.table.GetIfPresent(client)
	if !ok {
		b, _ = r.table.SetIfAbsent(client, &bucket{tokens: float64(r.cfg.Burst), last: now})
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(float64(r.cfg.Burst), b.tokens+elapsed.Seconds()*r.cfg.Rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return 0, false
	}
	wait = time.Duration((1 - b.tokens) / r.cfg.Rate * float64(time.Second))
	if log = b.loggedAt.IsZero() || now.Sub(b.loggedAt) >= logEvery; log {
		b.loggedAt = now
	}
	return max(wait, time.Nanosecond), log
}

// Clients is the approximate number of budgets held.
func (r *Resolver) Clients() int {
	if r.table == nil {
		return 0
	}
	return r.table.EstimatedSize()
}

// ClientOf is who a request comes from: the peer, unless the peer is a
// trusted proxy; then the right-most address of X-Forwarded-For (else
// X-Real-IP) that is not itself a trusted proxy, since the addresses to its
// left were written by the client and prove nothing. IPv4 addresses stand
// alone; an IPv6 client is its /64, which one machine usually holds whole.
// The zero Prefix means unknown (one shared budget).
func ClientOf(peer string, h http.Header, trusted []netip.Prefix) netip.Prefix {
	addr, ok := parseAddr(peer)
	if !ok {
		return netip.Prefix{}
	}
	if !contains(trusted, addr) {
		return key(addr)
	}
	hops := h["X-Forwarded-For"]
	if len(hops) == 0 {
		hops = h["X-Real-Ip"]
	}
	// Right to left, over every header line: each proxy appends.
	for i := len(hops) - 1; i >= 0; i-- {
		line := hops[i]
		for line != "" {
			var hop string
			if j := strings.LastIndexByte(line, ','); j >= 0 {
				hop, line = line[j+1:], line[:j]
			} else {
				hop, line = line, ""
			}
			a, ok := parseAddr(strings.TrimSpace(hop))
			if !ok {
				// Garbage where a proxy should have written an address: the
				// last proxy we trust is the best we know.
				return key(addr)
			}
			if !contains(trusted, a) {
				return key(a)
			}
			addr = a
		}
	}
	return key(addr) // proxies all the way: the left-most one
}

// parseAddr reads "ip", "ip:port" or "[ip]:port".
func parseAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

func contains(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func key(a netip.Addr) netip.Prefix {
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// otterClock lets otter run on a test's clock, without periodic clean-ups.
type otterClock struct{ Clock }

func (c otterClock) NowNano() int64                    { return c.Now().UnixNano() }
func (otterClock) Tick(time.Duration) <-chan time.Time { return nil }
