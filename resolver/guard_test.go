package resolver

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type scriptedResolver struct {
	calls atomic.Int64
	err   atomic.Pointer[error]
	block chan struct{}
}

func (s *scriptedResolver) Resolve(ctx context.Context, req Request) (*Decision, error) {
	s.calls.Add(1)
	if s.block != nil {
		select {
		case <-s.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if e := s.err.Load(); e != nil {
		return nil, *e
	}
	return Deny(), nil
}

func (s *scriptedResolver) fail(err error) { s.err.Store(&err) }
func (s *scriptedResolver) recover()       { s.err.Store(nil) }

func TestGuardBulkheadBoundsConcurrentCalls(t *testing.T) {
	next := &scriptedResolver{block: make(chan struct{})}
	g := NewGuard(next, GuardConfig{MaxConcurrent: 2, BreakAfter: 100, Cooldown: time.Second}, prometheus.NewRegistry())
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = g.Resolve(context.Background(), Request{})
		}()
	}
	for next.calls.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := g.Resolve(ctx, Request{}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("third call with both slots taken: err = %v, want ErrUnavailable", err)
	}
	if n := next.calls.Load(); n != 2 {
		t.Fatalf("calls reaching Authgear = %d, want 2", n)
	}
	close(next.block)
	wg.Wait()
	if _, err := g.Resolve(context.Background(), Request{}); err != nil {
		t.Fatalf("after the slots freed: %v", err)
	}
}

func TestGuardCircuitOpensProbesAndCloses(t *testing.T) {
	next := &scriptedResolver{}
	now := time.Now()
	g := NewGuard(next, GuardConfig{MaxConcurrent: 10, BreakAfter: 3, Cooldown: 5 * time.Second}, prometheus.NewRegistry())
	g.now = func() time.Time { return now }
	next.fail(ErrUnavailable)
	for range 3 {
		if _, err := g.Resolve(context.Background(), Request{}); !errors.Is(err, ErrUnavailable) {
			t.Fatal(err)
		}
	}
	// Open: fail at once, without calling Authgear.
	if _, err := g.Resolve(context.Background(), Request{}); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("err = %v, want ErrCircuitOpen", err)
	}
	if n := next.calls.Load(); n != 3 {
		t.Fatalf("calls = %d, want 3: an open circuit still called Authgear", n)
	}
	// After the cooldown one probe goes through; it fails: open again.
	now = now.Add(5 * time.Second)
	if _, err := g.Resolve(context.Background(), Request{}); errors.Is(err, ErrCircuitOpen) || err == nil {
		t.Fatalf("probe: err = %v, want Authgear's own error", err)
	}
	if _, err := g.Resolve(context.Background(), Request{}); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("after a failed probe: err = %v, want ErrCircuitOpen", err)
	}
	// Authgear is back: the next probe closes the circuit.
	now = now.Add(5 * time.Second)
	next.recover()
	for range 3 {
		if _, err := g.Resolve(context.Background(), Request{}); err != nil {
			t.Fatalf("after recovery: %v", err)
		}
	}
	if n := next.calls.Load(); n != 7 {
		t.Fatalf("calls = %d, want 7", n)
	}
}

func TestGuardOnlyOneProbeAtATime(t *testing.T) {
	next := &scriptedResolver{}
	now := time.Now()
	g := NewGuard(next, GuardConfig{MaxConcurrent: 10, BreakAfter: 1, Cooldown: time.Second}, prometheus.NewRegistry())
	g.now = func() time.Time { return now }
	next.fail(ErrUnavailable)
	_, _ = g.Resolve(context.Background(), Request{})
	now = now.Add(time.Second)
	next.recover()
	next.block = make(chan struct{})
	probeDone := make(chan error)
	go func() {
		_, err := g.Resolve(context.Background(), Request{})
		probeDone <- err
	}()
	for next.calls.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	if _, err := g.Resolve(context.Background(), Request{}); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("second call during the probe: err = %v, want ErrCircuitOpen", err)
	}
	close(next.block)
	if err := <-probeDone; err != nil {
		t.Fatal(err)
	}
}

func TestGuardIgnoresCallersGivingUp(t *testing.T) {
	next := &scriptedResolver{}
	g := NewGuard(next, GuardConfig{MaxConcurrent: 10, BreakAfter: 1, Cooldown: time.Hour}, prometheus.NewRegistry())
	next.fail(context.Canceled)
	_, _ = g.Resolve(context.Background(), Request{})
	next.recover()
	if _, err := g.Resolve(context.Background(), Request{}); err != nil {
		t.Fatalf("a cancelled call opened the circuit: %v", err)
	}
}
