package cache

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/authgear/authgear-forwardauth/resolver"
	"github.com/authgear/authgear-forwardauth/tracing"
)

// Child spans of a miss (the caller's span, /auth, is their parent).
const (
	spanRedisGet = "redis GET"
	spanResolve  = "authgear resolve"
	spanWait     = "coalesced wait"
)

var (
	resultHit   = tracing.Result.String("hit")
	resultMiss  = tracing.Result.String("miss")
	resultError = tracing.Result.String("error")
	resultAllow = tracing.Result.String("allow")
	resultDeny  = tracing.Result.String("deny")

	tierLocal  = []attribute.KeyValue{tracing.TierLocal} // a slice made once: a hit allocates nothing
	redisAttrs = trace.WithAttributes(attribute.String("db.system.name", "redis"), attribute.String("db.operation.name", "GET"))
	clientKind = trace.WithSpanKind(trace.SpanKindClient)
)

// flight is a traced miss: what its leader learnt, shared with the requests
// that waited for it. A nil *flight (tracing off) does nothing.
type flight struct {
	waitStart time.Time // of this caller, when it joined the miss
	d         *resolver.Decision
	tier      attribute.KeyValue // what answered
	by        trace.SpanContext  // the lookup or call that answered
}

func (f *flight) start(ctx context.Context, tracer trace.Tracer, name string) (context.Context, trace.Span) {
	if f == nil {
		return ctx, nil
	}
	if name == spanRedisGet {
		return tracer.Start(ctx, name, clientKind, redisAttrs)
	}
	return tracer.Start(ctx, name, clientKind)
}

func (f *flight) end(span trace.Span, result attribute.KeyValue, err error) {
	if f == nil {
		return
	}
	span.SetAttributes(result)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// answered records that span's lookup answered the miss.
func (f *flight) answered(span trace.Span, tier, result attribute.KeyValue) {
	if f == nil {
		return
	}
	f.tier, f.by = tier, span.SpanContext()
	f.end(span, result, nil)
}

// resolved records the resolver call's answer (or failure).
func (f *flight) resolved(span trace.Span, d *resolver.Decision, err error) {
	if f == nil {
		return
	}
	result := resultError
	switch {
	case err != nil:
	case d.Allow:
		result = resultAllow
	default:
		result = resultDeny
	}
	f.tier, f.by = tracing.TierResolver, span.SpanContext()
	f.end(span, result, err)
}

// traceMiss puts on the caller's span what answered its miss and returns the
// decision. A request that waited for another's miss gets a span for its
// wait, linked to the lookup or call it waited for. own is the caller's
// flight, nil when the caller is not traced; v is the leader's.
func (c *Cache) traceMiss(ctx context.Context, v any, led bool, own *flight) any {
	f, ok := v.(*flight)
	switch {
	case !ok:
		return v // led by a request that was not traced: nothing to tell
	case own == nil:
		return f.d
	}
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(f.tier)
	if f.d != nil && f.d.Stale {
		span.SetAttributes(tracing.Stale.Bool(true))
	}
	if !led {
		span.SetAttributes(tracing.Coalesced.Bool(true))
		_, wait := c.cfg.Tracer.Start(ctx, spanWait, trace.WithTimestamp(own.waitStart),
			trace.WithLinks(trace.Link{SpanContext: f.by}), trace.WithAttributes(f.tier))
		wait.End()
	}
	return f.d
}
