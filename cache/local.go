package cache

import (
	"context"
	"time"

	"github.com/maypok86/otter/v2"
)

// Local is the in-process tier: bounded in size, each entry living no longer
// than the tier's TTL nor its own expiry.
type Local struct {
	c     *otter.Cache[Key, Entry]
	clock Clock
	off   bool
}

// Clock tells the time; tests move theirs by hand.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// otterClock lets otter run on a test's clock, without periodic clean-ups.
type otterClock struct{ Clock }

func (c otterClock) NowNano() int64                    { return c.Now().UnixNano() }
func (otterClock) Tick(time.Duration) <-chan time.Time { return nil }

// NewLocal returns an in-process tier of at most maxEntries entries, each kept
// at most ttl; a ttl of 0 turns it off (every Get misses). clock is nil but
// in tests.
func NewLocal(maxEntries int, ttl time.Duration, clock Clock) *Local {
	opts := &otter.Options[Key, Entry]{MaximumSize: maxEntries}
	if clock == nil {
		clock = systemClock{}
	} else {
		opts.Clock = otterClock{clock}
	}
	opts.ExpiryCalculator = otter.ExpiryWritingFunc(func(e otter.Entry[Key, Entry]) time.Duration {
		return min(ttl, e.Value.keepUntil().Sub(clock.Now()))
	})
	return &Local{c: otter.Must(opts), clock: clock, off: ttl <= 0}
}

// Get returns the entry of k, possibly past its Expires but within its
// StaleUntil; the error is always nil (the signature every tier shares).
func (l *Local) Get(_ context.Context, k Key) (Entry, bool, error) {
	e, ok := l.c.GetIfPresent(k)
	return e, ok, nil
}

// Set stores e under k unless it has already expired.
func (l *Local) Set(_ context.Context, k Key, e Entry) error {
	if !l.off && e.keepUntil().After(l.clock.Now()) {
		l.c.Set(k, e)
	}
	return nil
}

// Delete removes k.
func (l *Local) Delete(_ context.Context, k Key) error {
	l.c.Invalidate(k)
	return nil
}

// DeleteUser removes every entry allowing userID. It walks the whole tier:
// purges are rare and a walk costs the hit path nothing, unlike an index.
func (l *Local) DeleteUser(_ context.Context, userID string) error {
	for k, e := range l.c.All() {
		if e.Decision.Allow && e.Decision.Identity.UserID == userID {
			l.c.Invalidate(k)
		}
	}
	return nil
}

// Clear removes everything, for when purges may have been missed.
func (l *Local) Clear() { l.c.InvalidateAll() }

// Len is the approximate number of entries.
func (l *Local) Len() int { return l.c.EstimatedSize() }
