package cache

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/authgear/authgear-forwardauth/resolver"
	"github.com/authgear/authgear-forwardauth/tracing"
	"github.com/authgear/authgear-forwardauth/tracing/tracingtest"
)

func spanRecorder(t *testing.T) (*tracetest.SpanRecorder, trace.Tracer, func(*Config)) {
	sr, tracer := tracingtest.Recorder(t, sdktrace.ParentBased(sdktrace.AlwaysSample()))
	return sr, tracer, func(c *Config) { c.Tracer = tracer }
}

func attrOf(s sdktrace.ReadOnlySpan, key attribute.Key) string {
	for _, a := range s.Attributes() {
		if a.Key == key {
			return a.Value.String()
		}
	}
	return ""
}

// request is a caller's span (the /auth span in the service).
func request(tracer trace.Tracer, name string) (context.Context, trace.Span) {
	return tracer.Start(context.Background(), name)
}

// inSingleflight counts the goroutines started by test that are inside the
// cache's singleflight.
func inSingleflight(test string) int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "singleflight.(*Group).Do(") && strings.Contains(g, "."+test+".") {
			n++
		}
	}
	return n
}

func TestCoalescedWaitLinksToTheCallItWaitedFor(t *testing.T) {
	sr, tracer, withTracer := spanRecorder(t)
	tc := newTestCache(t, nil, testTTL, withTracer)
	entered, release := tc.stub.hold()

	leaderCtx, leader := request(tracer, "leader")
	waiterCtx, waiter := request(tracer, "waiter")
	var wg sync.WaitGroup
	decide := func(ctx context.Context) {
		defer wg.Done()
		if d, err := tc.Decide(ctx, bearer("t")); err != nil || !d.Allow {
			t.Errorf("Decide: %v, %v", d, err)
		}
	}
	wg.Add(2)
	go decide(leaderCtx)
	<-entered // the leader is calling the resolver
	go decide(waiterCtx)
	eventually(t, "the second request waits for the first one's call", func() bool { return inSingleflight("TestCoalescedWaitLinksToTheCallItWaitedFor") == 2 })
	release()
	wg.Wait()
	leader.End()
	waiter.End()

	spans := sr.Ended()
	call := tracingtest.OneEnded(t, spans, "authgear resolve")
	if call.Parent().SpanID() != leader.SpanContext().SpanID() {
		t.Errorf("resolver span's parent %s, want the leader's request %s", call.Parent().SpanID(), leader.SpanContext().SpanID())
	}
	wait := tracingtest.OneEnded(t, spans, "coalesced wait")
	if wait.Parent().SpanID() != waiter.SpanContext().SpanID() {
		t.Errorf("wait span's parent %s, want the waiter's request %s", wait.Parent().SpanID(), waiter.SpanContext().SpanID())
	}
	if l := wait.Links(); len(l) != 1 || l[0].SpanContext.SpanID() != call.SpanContext().SpanID() ||
		l[0].SpanContext.TraceID() != call.SpanContext().TraceID() {
		t.Errorf("wait span links %+v, want one to the resolver call %s", l, call.SpanContext().SpanID())
	}
	// The wait began while the call was under way and ended after it.
	if wait.StartTime().Before(call.StartTime()) || wait.EndTime().Before(call.EndTime()) {
		t.Errorf("wait span %v to %v, call %v to %v", wait.StartTime(), wait.EndTime(), call.StartTime(), call.EndTime())
	}
	for _, s := range []sdktrace.ReadOnlySpan{tracingtest.OneEnded(t, spans, "leader"), tracingtest.OneEnded(t, spans, "waiter")} {
		if got := attrOf(s, tracing.Tier); got != "resolver" {
			t.Errorf("%s: tier %q, want resolver", s.Name(), got)
		}
	}
	if attrOf(tracingtest.OneEnded(t, spans, "waiter"), tracing.Coalesced) != "true" || attrOf(tracingtest.OneEnded(t, spans, "leader"), tracing.Coalesced) != "" {
		t.Error("only the waiter should be marked coalesced")
	}
}

// failingTier is a shared tier that is down.
type failingTier struct{ Tier }

func (failingTier) Get(context.Context, Key) (Entry, bool, error) {
	return Entry{}, false, errors.New("connection refused")
}
func (failingTier) Set(context.Context, Key, Entry) error { return errors.New("connection refused") }

func TestSharedLookupIsAChildSpan(t *testing.T) {
	sr, tracer, withTracer := spanRecorder(t)
	// A second in-process tier stands in for Redis: the span is around
	// whichever tier is shared.
	shared := NewLocal(1000, time.Hour, nil)
	first := newTestCache(t, shared, testTTL, withTracer)
	second := newTestCache(t, shared, testTTL, withTracer) // another replica

	decide := func(tc *testCache, name string) sdktrace.ReadOnlySpan {
		ctx, span := request(tracer, name)
		if _, err := tc.Decide(ctx, bearer("a")); err != nil {
			t.Fatal(err)
		}
		span.End()
		return tracingtest.OneEnded(t, sr.Ended(), name)
	}
	r1 := decide(first, "first")
	r2 := decide(second, "second")
	r3 := decide(second, "third")

	gets := tracingtest.Ended(sr.Ended(), "redis GET")
	if len(gets) != 2 {
		t.Fatalf("%d Redis lookups traced, want 2 (the third request is an in-process hit)", len(gets))
	}
	for i, want := range []struct {
		parent sdktrace.ReadOnlySpan
		result string
	}{{r1, "miss"}, {r2, "hit"}} {
		if gets[i].Parent().SpanID() != want.parent.SpanContext().SpanID() || attrOf(gets[i], tracing.Result) != want.result ||
			attrOf(gets[i], "db.system.name") != "redis" || gets[i].SpanKind() != trace.SpanKindClient {
			t.Errorf("lookup %d: parent %s result %q, want a client span under %q, %s", i, gets[i].Parent().SpanID(),
				attrOf(gets[i], tracing.Result), want.parent.Name(), want.result)
		}
	}
	for _, c := range []struct {
		s    sdktrace.ReadOnlySpan
		tier string
	}{{r1, "resolver"}, {r2, "redis"}, {r3, "in-process"}} {
		if got := attrOf(c.s, tracing.Tier); got != c.tier {
			t.Errorf("%s request: tier %q, want %q", c.s.Name(), got, c.tier)
		}
	}
	if n := len(tracingtest.Ended(sr.Ended(), "authgear resolve")); n != 1 {
		t.Errorf("%d resolver calls traced, want 1", n)
	}

	// Redis down: its span says so, and the resolver answers.
	down := newTestCache(t, failingTier{}, testTTL, withTracer)
	r4 := decide(down, "fourth")
	gets = tracingtest.Ended(sr.Ended(), "redis GET")
	last := gets[len(gets)-1]
	if last.Status().Code != codes.Error || attrOf(last, tracing.Result) != "error" || attrOf(r4, tracing.Tier) != "resolver" {
		t.Errorf("failed lookup: status %v result %q; request tier %q", last.Status(), attrOf(last, tracing.Result), attrOf(r4, tracing.Tier))
	}
}

func TestStaleAllowIsMarkedOnTheSpan(t *testing.T) {
	sr, tracer, withTracer := spanRecorder(t)
	tc := newTestCache(t, nil, time.Hour, withTracer, func(c *Config) { c.StaleIfError = time.Hour })
	tc.mustDecide(t, "a")
	tc.clock.Advance(testTTL + time.Second)
	tc.stub.decide = func(resolver.Request) (*resolver.Decision, error) {
		return nil, fmt.Errorf("%w: status 500", resolver.ErrUnavailable)
	}
	ctx, span := request(tracer, "request")
	if d, err := tc.Decide(ctx, bearer("a")); err != nil || !d.Stale {
		t.Fatalf("Decide: %+v, %v; want a stale allow", d, err)
	}
	span.End()
	s := tracingtest.OneEnded(t, sr.Ended(), "request")
	if attrOf(s, tracing.Stale) != "true" || attrOf(s, tracing.Tier) != "resolver" {
		t.Errorf("stale answer: stale %q tier %q", attrOf(s, tracing.Stale), attrOf(s, tracing.Tier))
	}
}

// A request without a span (nothing to trace) and a traced one may share a
// miss either way round; the cache never starts a trace of its own.
func TestTracedAndUntracedRequestsShareAMiss(t *testing.T) {
	sr, tracer, withTracer := spanRecorder(t)
	for i, untracedLeads := range []bool{true, false} {
		tc := newTestCache(t, nil, testTTL, withTracer)
		entered, release := tc.stub.hold()
		traced, span := request(tracer, "traced")
		first, second := traced, context.Background()
		if untracedLeads {
			first, second = second, first
		}
		var wg sync.WaitGroup
		decide := func(ctx context.Context) {
			defer wg.Done()
			if d, err := tc.Decide(ctx, bearer("t")); err != nil || !d.Allow {
				t.Errorf("Decide: %v, %v", d, err)
			}
		}
		wg.Add(2)
		go decide(first)
		<-entered
		go decide(second)
		eventually(t, "the second request waits", func() bool {
			return inSingleflight("TestTracedAndUntracedRequestsShareAMiss") == 2
		})
		release()
		wg.Wait()
		span.End()
		got := tracingtest.Ended(sr.Ended(), "authgear resolve")
		if untracedLeads && len(got) != 0 || !untracedLeads && len(got) != 1 {
			t.Errorf("case %d: %d resolver spans, want one only when the traced request led", i, len(got))
		}
		for _, s := range sr.Ended() {
			if s.Name() != "traced" && !s.Parent().IsValid() {
				t.Errorf("case %d: the cache started a trace of its own (%q)", i, s.Name())
			}
		}
	}
}
