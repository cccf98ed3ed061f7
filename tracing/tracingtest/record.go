package tracingtest

import (
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/authgear/authgear-forwardauth/tracing"
)

// Recorder is an SDK tracer, sampling with sampler, whose ended spans the
// test reads in memory (no exporter, no receiver).
func Recorder(t testing.TB, sampler sdktrace.Sampler) (*tracetest.SpanRecorder, trace.Tracer) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr), sdktrace.WithSampler(sampler))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	return sr, tp.Tracer(tracing.ScopeName)
}

// Ended returns the spans named name.
func Ended(spans []sdktrace.ReadOnlySpan, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// OneEnded returns the one span named name; anything else fails the test,
// naming every span there is.
func OneEnded(t testing.TB, spans []sdktrace.ReadOnlySpan, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	got := Ended(spans, name)
	if len(got) != 1 {
		var names []string
		for _, s := range spans {
			names = append(names, s.Name())
		}
		t.Fatalf("%d spans named %q, want 1 (spans: %q)", len(got), name, names)
	}
	return got[0]
}
