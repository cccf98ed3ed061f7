package resolver

import (
	"container/list"
	"context"
	"net/netip"
	"sync"
)

// fairSlots is the Guard's bulkhead: n slots, and when none is free the
// waiting clients take turns, one call each, whatever their number of
// waiters. A client flooding with misses thus waits behind its own requests,
// and a newcomer is served within one turn of the clients waiting at the
// time, instead of behind every request queued before it.
type fairSlots struct {
	mu      sync.Mutex
	free    int
	clients map[netip.Prefix]*clientWaiters
	turns   list.List // of *clientWaiters with waiters, in turn order
}

type clientWaiters struct {
	key     netip.Prefix
	waiters []*slotWaiter
	turn    *list.Element
}

type slotWaiter struct {
	ready   chan struct{}
	granted bool // under fairSlots.mu
}

func newFairSlots(n int) *fairSlots {
	return &fairSlots{free: n, clients: map[netip.Prefix]*clientWaiters{}}
}

// acquire takes a slot for client, waiting for its turn as long as ctx allows.
func (s *fairSlots) acquire(ctx context.Context, client netip.Prefix) error {
	s.mu.Lock()
	if s.free > 0 && s.turns.Len() == 0 {
		s.free--
		s.mu.Unlock()
		return nil
	}
	if err := ctx.Err(); err != nil {
		s.mu.Unlock()
		return err
	}
	c := s.clients[client]
	if c == nil {
		c = &clientWaiters{key: client}
		c.turn = s.turns.PushBack(c)
		s.clients[client] = c
	}
	w := &slotWaiter{ready: make(chan struct{})}
	c.waiters = append(c.waiters, w)
	s.mu.Unlock()

	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	if w.granted {
		// The slot came as we gave up: pass it on.
		s.mu.Unlock()
		s.release()
		return ctx.Err()
	}
	for i, o := range c.waiters {
		if o == w {
			c.waiters = append(c.waiters[:i], c.waiters[i+1:]...)
			break
		}
	}
	if len(c.waiters) == 0 {
		s.drop(c)
	}
	s.mu.Unlock()
	return ctx.Err()
}

// release frees a slot: it goes to the first waiter of the client whose turn
// it is, and that client goes to the back of the line.
func (s *fairSlots) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	front := s.turns.Front()
	if front == nil {
		s.free++
		return
	}
	c := front.Value.(*clientWaiters)
	w := c.waiters[0]
	c.waiters[0] = nil
	c.waiters = c.waiters[1:]
	if len(c.waiters) == 0 {
		s.drop(c)
	} else {
		s.turns.MoveToBack(front)
	}
	w.granted = true
	close(w.ready)
}

// drop forgets a client without waiters; s.mu is held.
func (s *fairSlots) drop(c *clientWaiters) {
	s.turns.Remove(c.turn)
	delete(s.clients, c.key)
}
