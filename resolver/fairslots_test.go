package resolver

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// waiting is how many acquires are queued.
func (s *fairSlots) waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.clients {
		n += len(c.waiters)
	}
	return n
}

func waitQueued(t *testing.T, s *fairSlots, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.waiting() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters queued, want %d", s.waiting(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestFairSlotsNewcomerWaitsOneTurn: with every slot taken and a flooding
// client queued 50 deep, a newcomer gets the second slot freed, not the 51st.
func TestFairSlotsNewcomerWaitsOneTurn(t *testing.T) {
	s := newFairSlots(1)
	flood, user := netip.MustParsePrefix("203.0.113.1/32"), netip.MustParsePrefix("198.51.100.1/32")
	if err := s.acquire(context.Background(), flood); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []netip.Prefix
	var wg sync.WaitGroup
	enqueue := func(c netip.Prefix) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.acquire(context.Background(), c); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, c)
			mu.Unlock()
			s.release()
		}()
	}
	for range 50 {
		enqueue(flood)
	}
	waitQueued(t, s, 50)
	enqueue(user)
	waitQueued(t, s, 51)
	s.release()
	wg.Wait()
	if len(order) != 51 || order[1] != user {
		t.Fatalf("the newcomer came %dth of %d, want 2nd", index(order, user)+1, len(order))
	}
	if s.free != 1 || s.turns.Len() != 0 || len(s.clients) != 0 {
		t.Fatalf("left free=%d turns=%d clients=%d, want 1, 0, 0", s.free, s.turns.Len(), len(s.clients))
	}
}

func index(s []netip.Prefix, v netip.Prefix) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func TestFairSlotsGivingUpLeavesNoTrace(t *testing.T) {
	s := newFairSlots(1)
	c := netip.MustParsePrefix("203.0.113.1/32")
	if err := s.acquire(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 10)
	for range 10 {
		go func() { errs <- s.acquire(ctx, c) }()
	}
	waitQueued(t, s, 10)
	cancel()
	for range 10 {
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	}
	s.release()
	if s.free != 1 || s.turns.Len() != 0 || len(s.clients) != 0 {
		t.Fatalf("left free=%d turns=%d clients=%d", s.free, s.turns.Len(), len(s.clients))
	}
	// A slot granted as its waiter gives up is passed on, not lost.
	for range 200 {
		if err := s.acquire(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- s.acquire(ctx, c) }()
		waitQueued(t, s, 1)
		go cancel()
		s.release()
		if err := <-done; err == nil {
			s.release()
		}
		if s.free != 1 {
			t.Fatalf("free = %d after a grant raced a cancel, want 1", s.free)
		}
	}
}

// TestGuardProbeWithoutASlotDoesNotReopen: a probe that finds no free slot
// says nothing about Authgear; the next call probes instead.
func TestGuardProbeWithoutASlotDoesNotReopen(t *testing.T) {
	next := &scriptedResolver{}
	now := time.Now()
	g := NewGuard(next, GuardConfig{MaxConcurrent: 1, BreakAfter: 1, Cooldown: 5 * time.Second}, prometheus.NewRegistry())
	g.now = func() time.Time { return now }
	next.fail(ErrUnavailable)
	_, _ = g.Resolve(context.Background(), Request{})
	next.recover()
	now = now.Add(5 * time.Second)
	if err := g.slots.acquire(context.Background(), netip.Prefix{}); err != nil { // every slot busy
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := g.Resolve(ctx, Request{}); errors.Is(err, ErrCircuitOpen) || err == nil {
		t.Fatalf("probe without a slot: %v, want no_slot", err)
	}
	g.slots.release()
	if _, err := g.Resolve(context.Background(), Request{}); err != nil {
		t.Fatalf("after a probe that found no slot: %v; the circuit was reopened", err)
	}
}

// TestGuardDeadlineSpentQueueingIsNotAFailure: a call cut short by the
// caller's deadline (mostly spent waiting for a slot in a flood) does not
// count against Authgear.
func TestGuardDeadlineSpentQueueingIsNotAFailure(t *testing.T) {
	next := &scriptedResolver{block: make(chan struct{})}
	g := NewGuard(next, GuardConfig{MaxConcurrent: 4, BreakAfter: 1, Cooldown: time.Hour}, prometheus.NewRegistry())
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		if _, err := g.Resolve(ctx, Request{}); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
		cancel()
	}
	close(next.block)
	next.block = nil
	if _, err := g.Resolve(context.Background(), Request{}); err != nil {
		t.Fatalf("after callers' deadlines ran out: %v; the circuit opened", err)
	}
	// Authgear's own failure still counts.
	next.fail(ErrUnavailable)
	_, _ = g.Resolve(context.Background(), Request{})
	if _, err := g.Resolve(context.Background(), Request{}); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("after Authgear failed: %v, want the circuit open", err)
	}
}
