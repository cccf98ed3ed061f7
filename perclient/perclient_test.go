package perclient

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgear/authgear-forwardauth/internal/clocktest"
	"github.com/authgear/authgear-forwardauth/resolver"
)

// countingResolver answers deny, counting calls and remembering the client.
type countingResolver struct {
	calls  atomic.Int64
	mu     sync.Mutex
	client netip.Prefix
	err    error
}

func (c *countingResolver) Resolve(_ context.Context, req resolver.Request) (*resolver.Decision, error) {
	c.calls.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.client = req.Client
	if c.err != nil {
		return nil, c.err
	}
	return resolver.Deny(), nil
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

func from(addr string) resolver.Request {
	return resolver.Request{Peer: addr + ":40000"}
}

func newBudget(t *testing.T, rate float64, burst int, clock Clock) (*Resolver, *countingResolver, prometheus.Counter, *bytes.Buffer) {
	t.Helper()
	next := &countingResolver{}
	refused := prometheus.NewCounter(prometheus.CounterOpts{Name: "refused"})
	logs := &bytes.Buffer{}
	r := New(next, Config{Rate: rate, Burst: burst, TrustedProxies: loopback, Clock: clock},
		slog.New(slog.NewTextHandler(logs, nil)), refused)
	return r, next, refused, logs
}

func TestBudgetBurstThenRefill(t *testing.T) {
	clock := clocktest.New(time.Now())
	r, next, refused, _ := newBudget(t, 2, 3, clock)
	ctx := context.Background()
	spend := func() error { _, err := r.Resolve(ctx, from("198.51.100.1")); return err }
	for i := range 3 {
		if err := spend(); err != nil {
			t.Fatalf("call %d of the burst: %v", i+1, err)
		}
	}
	err := spend()
	var over *OverBudgetError
	if !errors.As(err, &over) {
		t.Fatalf("fourth call at once: %v, want over budget", err)
	}
	if over.RetryAfter() != 500*time.Millisecond {
		t.Errorf("retry after %v, want 500ms (one call at 2/s)", over.RetryAfter())
	}
	if errors.Is(err, resolver.ErrUnavailable) {
		t.Error("over budget must not read as Authgear unavailable (it would serve stale answers, or count as a failure)")
	}
	clock.Advance(499 * time.Millisecond)
	if err := spend(); err == nil {
		t.Fatal("a call before the refill")
	}
	clock.Advance(time.Millisecond)
	if err := spend(); err != nil {
		t.Fatalf("after 500ms: %v", err)
	}
	// Idle for long, the budget fills up to the burst, no further.
	clock.Advance(time.Hour)
	for i := range 3 {
		if err := spend(); err != nil {
			t.Fatalf("call %d after an hour: %v", i+1, err)
		}
	}
	if err := spend(); err == nil {
		t.Fatal("the burst grew past 3")
	}
	if n := next.calls.Load(); n != 7 {
		t.Errorf("calls reaching the resolver = %d, want 7", n)
	}
	if n := testutil.ToFloat64(refused); n != 3 {
		t.Errorf("refused = %v, want 3", n)
	}
	// Another client has its own budget.
	if _, err := r.Resolve(ctx, from("198.51.100.2")); err != nil {
		t.Fatalf("another client: %v", err)
	}
}

func TestBudgetOffStillNamesTheClient(t *testing.T) {
	r, next, _, _ := newBudget(t, 0, 0, nil)
	for range 1000 {
		if _, err := r.Resolve(context.Background(), from("198.51.100.1")); err != nil {
			t.Fatal(err)
		}
	}
	if next.client != netip.MustParsePrefix("198.51.100.1/32") {
		t.Errorf("client passed on = %v", next.client)
	}
	if r.Clients() != 0 {
		t.Error("a table is kept with the budget off")
	}
}

func TestOverBudgetIsLoggedOnceAMinuteWithoutCredentials(t *testing.T) {
	clock := clocktest.New(time.Now())
	r, _, _, logs := newBudget(t, 1, 1, clock)
	req := from("198.51.100.9")
	req.Bearer = "aB3aB3aB3aB3aB3aB3aB3aB3aB3aB3aB"
	for range 20 {
		_, _ = r.Resolve(context.Background(), req)
	}
	clock.Advance(30 * time.Second)
	for range 40 {
		_, _ = r.Resolve(context.Background(), req)
	}
	if n := strings.Count(logs.String(), "over its budget"); n != 1 {
		t.Fatalf("%d log lines within a minute, want 1:\n%s", n, logs)
	}
	clock.Advance(31 * time.Second)
	for range 40 {
		_, _ = r.Resolve(context.Background(), req)
	}
	if n := strings.Count(logs.String(), "over its budget"); n != 2 {
		t.Fatalf("%d log lines after a minute, want 2", n)
	}
	if strings.Contains(logs.String(), req.Bearer) {
		t.Fatal("a credential was logged")
	}
	if !strings.Contains(logs.String(), "198.51.100.9") {
		t.Errorf("the client is not named: %s", logs)
	}
}

func TestClientOf(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	tests := []struct {
		name   string
		peer   string
		header http.Header
		want   string
	}{
		{"untrusted peer", "198.51.100.7:5555", nil, "198.51.100.7/32"},
		{"untrusted peer spoofing X-Forwarded-For", "198.51.100.7:5555", http.Header{"X-Forwarded-For": {"203.0.113.1"}}, "198.51.100.7/32"},
		{"untrusted peer spoofing X-Real-IP", "198.51.100.7:5555", http.Header{"X-Real-Ip": {"203.0.113.1"}}, "198.51.100.7/32"},
		{"trusted peer without headers", "127.0.0.1:5555", nil, "127.0.0.1/32"},
		{"trusted peer, one hop", "127.0.0.1:5555", http.Header{"X-Forwarded-For": {"203.0.113.1"}}, "203.0.113.1/32"},
		{"client's own spoofed hops to the left", "127.0.0.1:5555", http.Header{"X-Forwarded-For": {"1.1.1.1, 2.2.2.2, 203.0.113.1"}}, "203.0.113.1/32"},
		{"trusted hops to the right are skipped", "127.0.0.1:5555", http.Header{"X-Forwarded-For": {"1.1.1.1, 203.0.113.1, 10.1.2.3, 10.0.0.9"}}, "203.0.113.1/32"},
		{"several header lines", "127.0.0.1:5555", http.Header{"X-Forwarded-For": {"1.1.1.1", "203.0.113.1, 10.0.0.2"}}, "203.0.113.1/32"},
		{"X-Real-IP when no X-Forwarded-For", "127.0.0.1:5555", http.Header{"X-Real-Ip": {"203.0.113.5"}}, "203.0.113.5/32"},
		{"X-Forwarded-For wins over X-Real-IP", "127.0.0.1:5555", http.Header{"X-Real-Ip": {"1.1.1.1"}, "X-Forwarded-For": {"203.0.113.1"}}, "203.0.113.1/32"},
		{"only trusted hops: the left-most", "127.0.0.1:5555", http.Header{"X-Forwarded-For": {"10.0.0.1, 10.0.0.2"}}, "10.0.0.1/32"},
		{"garbage where an address should be", "127.0.0.1:5555", http.Header{"X-Forwarded-For": {"203.0.113.1, not-an-ip"}}, "127.0.0.1/32"},
		{"garbage behind a trusted hop", "127.0.0.1:5555", http.Header{"X-Forwarded-For": {"junk, 10.0.0.3"}}, "10.0.0.3/32"},
		{"hop with a port", "127.0.0.1:5555", http.Header{"X-Forwarded-For": {"203.0.113.1:8443"}}, "203.0.113.1/32"},
		{"IPv6 client: its /64", "[::1]:5555", http.Header{"X-Forwarded-For": {"2001:db8:1:2:3:4:5:6"}}, "2001:db8:1:2::/64"},
		{"IPv6 hop in brackets with a port", "[::1]:5555", http.Header{"X-Forwarded-For": {"[2001:db8:1:2::9]:443"}}, "2001:db8:1:2::/64"},
		{"IPv4-mapped IPv6 peer", "[::ffff:198.51.100.7]:5555", nil, "198.51.100.7/32"},
		{"IPv6 peer, untrusted", "[2001:db8:aa:bb::1]:5555", nil, "2001:db8:aa:bb::/64"},
		{"unknown peer", "@", nil, "invalid Prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ClientOf(tt.peer, tt.header, trusted).String(); got != tt.want {
				t.Errorf("ClientOf = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestRefusalsNeverOpenTheCircuit: a client over budget is refused in front
// of the Guard, so however many 429s, Authgear is not given a rest.
func TestRefusalsNeverOpenTheCircuit(t *testing.T) {
	next := &countingResolver{}
	reg := prometheus.NewRegistry()
	g := resolver.NewGuard(next, resolver.GuardConfig{MaxConcurrent: 4, BreakAfter: 1, Cooldown: time.Hour}, reg)
	r := New(g, Config{Rate: 1, Burst: 1, TrustedProxies: loopback}, slog.New(slog.DiscardHandler), g.Rejected("client_rate"))
	for range 500 {
		_, _ = r.Resolve(context.Background(), from("198.51.100.1"))
	}
	if _, err := r.Resolve(context.Background(), from("198.51.100.2")); err != nil {
		t.Fatalf("another client after 499 refusals: %v", err)
	}
	if n := testutil.ToFloat64(g.Rejected("client_rate")); n != 499 {
		t.Errorf(`forwardauth_resolver_rejected_total{reason="client_rate"} = %v, want 499`, n)
	}
	if n := next.calls.Load(); n != 2 {
		t.Errorf("calls = %d, want 2", n)
	}
}

// TestBudgetTableIsBounded: a million different addresses (a quarter as
// many under the race detector) leave a table of at most MaxClients budgets,
// and the memory it holds stays bounded by that, not by the addresses seen.
func TestBudgetTableIsBounded(t *testing.T) {
	n := 1_000_000
	if raceEnabled {
		n /= 4
	}
	const maxClients = 10_000
	next := &countingResolver{}
	r := New(next, Config{Rate: 1, Burst: 5, TrustedProxies: loopback, MaxClients: maxClients, Clock: clocktest.New(time.Now())},
		slog.New(slog.DiscardHandler), prometheus.NewCounter(prometheus.CounterOpts{Name: "x"}))
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ctx := context.Background()
	for i := range n {
		a := netip.AddrFrom4([4]byte{100, byte(i >> 16), byte(i >> 8), byte(i)})
		if _, err := r.Resolve(ctx, resolver.Request{Peer: a.String()}); err != nil {
			t.Fatalf("the first call of a new client: %v", err)
		}
	}
	r.table.CleanUp()
	if got := r.Clients(); got > maxClients {
		t.Fatalf("%d budgets held after %d clients, want at most %d", got, n, maxClients)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	// About 200 bytes a budget; a table that kept every client would hold
	// 100+ MB here.
	if limit := int64(maxClients) * 1024; grew > limit {
		t.Fatalf("heap grew by %d bytes after %d clients, want under %d", grew, n, limit)
	}
	t.Logf("%d clients seen, %d held, heap +%d KiB", n, r.Clients(), grew>>10)
}
