package handler

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/authgear/authgear-forwardauth/tracing"
)

// benchTracedHit is the in-process hit with tracing set up as main does
// (tracing.Setup from the OTEL_* variables: SDK, batch processor, OTLP/HTTP
// exporter) towards a collector that reads and discards every export, so
// that the figure is the service's own cost of tracing. Requests come
// without a traceparent: the sampler alone decides.
func benchTracedHit(b *testing.B, sampler, arg string) {
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	b.Cleanup(collector.Close)
	vars := map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL,
		"OTEL_TRACES_SAMPLER":         sampler,
		"OTEL_TRACES_SAMPLER_ARG":     arg,
	}
	tr, err := tracing.Setup(b.Context(), func(k string) string { return vars[k] }, discard)
	if err != nil || tr == nil {
		b.Fatalf("tracing.Setup: %v, %v", tr, err)
	}
	b.Cleanup(func() { _ = tr.Shutdown(b.Context()) })
	s := newStack(b, stackOptions{tracer: tr.Tracer()})
	benchServe(b, s.handler, benchRequest())
}

// BenchmarkAuthHitInProcessTracedAll: tracing on, every request sampled.
func BenchmarkAuthHitInProcessTracedAll(b *testing.B) { benchTracedHit(b, "always_on", "") }

// BenchmarkAuthHitInProcessTraced1Percent: tracing on, 1% of requests sampled.
func BenchmarkAuthHitInProcessTraced1Percent(b *testing.B) {
	benchTracedHit(b, "traceidratio", "0.01")
}
