package resolver

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Resolver is anything that answers a Request: the Client, or a Guard around it.
type Resolver interface {
	Resolve(ctx context.Context, req Request) (*Decision, error)
}

// GuardConfig bounds what a slow or failing Authgear can cost.
type GuardConfig struct {
	// MaxConcurrent calls at once (a bulkhead); more wait for a slot as long
	// as their context allows. Waiting clients (Request.Client) take turns,
	// so a flood from some cannot hold the others back.
	MaxConcurrent int
	// BreakAfter consecutive failures open the circuit: calls then fail at
	// once for Cooldown, after which one call probes whether Authgear is back.
	BreakAfter int
	Cooldown   time.Duration
}

// Guard protects the service from Authgear: a slow one cannot pile up
// goroutines and connections, and a failing one is not hammered.
type Guard struct {
	next  Resolver
	cfg   GuardConfig
	slots *fairSlots
	now   func() time.Time

	mu        sync.Mutex
	failures  int
	openUntil time.Time
	probing   bool

	rejected *prometheus.CounterVec
	open     prometheus.Gauge
}

// ErrCircuitOpen is returned while Authgear is given a rest.
var ErrCircuitOpen = fmt.Errorf("%w: circuit open after repeated failures", ErrUnavailable)

// NewGuard wraps next.
func NewGuard(next Resolver, cfg GuardConfig, reg prometheus.Registerer) *Guard {
	g := &Guard{
		next: next, cfg: cfg, slots: newFairSlots(cfg.MaxConcurrent), now: time.Now,
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "forwardauth_resolver_rejected_total",
			Help: "Resolver calls not made: circuit open, no free slot before the deadline, or the client over its budget (client_rate).",
		}, []string{"reason"}),
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "forwardauth_resolver_circuit_open",
			Help: "1 while calls to Authgear are suspended after repeated failures.",
		}),
	}
	reg.MustRegister(g.rejected, g.open)
	return g
}

// Rejected is the counter of calls not made for reason, for refusals decided
// in front of the Guard (a client's budget) to be counted with its own.
func (g *Guard) Rejected(reason string) prometheus.Counter {
	return g.rejected.WithLabelValues(reason)
}

// Resolve calls next unless the circuit is open or no slot frees up in time.
func (g *Guard) Resolve(ctx context.Context, req Request) (*Decision, error) {
	probe, err := g.admit()
	if err != nil {
		g.rejected.WithLabelValues("circuit_open").Inc()
		return nil, err
	}
	if err := g.slots.acquire(ctx, req.Client); err != nil {
		g.rejected.WithLabelValues("no_slot").Inc()
		// Our own queue says nothing about Authgear: another call probes.
		g.endProbe(probe)
		return nil, fmt.Errorf("%w: no free slot for a resolver call: %v", ErrUnavailable, err)
	}
	d, err := g.next.Resolve(ctx, req)
	g.slots.release()
	if err != nil && (errors.Is(err, context.Canceled) || ctx.Err() != nil) {
		// A caller giving up, or a deadline spent mostly in the queue, says
		// nothing about Authgear: only its own failures open the circuit.
		g.endProbe(probe)
		return d, err
	}
	g.record(err == nil, probe)
	return d, err
}

// endProbe lets another call probe a half-open circuit, recording nothing.
func (g *Guard) endProbe(probe bool) {
	if !probe {
		return
	}
	g.mu.Lock()
	g.probing = false
	g.mu.Unlock()
}

// admit says whether a call may go ahead, and whether it is the probe of a
// half-open circuit.
func (g *Guard) admit() (probe bool, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.openUntil.IsZero() {
		return false, nil
	}
	if g.now().Before(g.openUntil) || g.probing {
		return false, ErrCircuitOpen
	}
	g.probing = true
	return true, nil
}

func (g *Guard) record(ok, probe bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if probe {
		g.probing = false
	}
	if ok {
		g.failures = 0
		if !g.openUntil.IsZero() {
			g.openUntil = time.Time{}
			g.open.Set(0)
		}
		return
	}
	g.failures++
	if probe || (g.cfg.BreakAfter > 0 && g.failures >= g.cfg.BreakAfter) {
		g.openUntil = g.now().Add(g.cfg.Cooldown)
		g.open.Set(1)
	}
}
