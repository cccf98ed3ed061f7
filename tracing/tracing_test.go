package tracing_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/authgear/authgear-forwardauth/tracing"
	"github.com/authgear/authgear-forwardauth/tracing/tracingtest"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestOffUnlessAnEndpointIsSet(t *testing.T) {
	for _, e := range [][]string{
		{},
		{"OTEL_SERVICE_NAME", "x", "OTEL_TRACES_SAMPLER", "always_on"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318", "OTEL_SDK_DISABLED", "true"},
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:4318/v1/traces", "OTEL_SDK_DISABLED", "TRUE"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER", "none"},
	} {
		tr, err := tracing.Setup(t.Context(), env(e...), discard)
		if err != nil || tr != nil {
			t.Errorf("env %q: tracing %v, error %v; want off", e, tr, err)
		}
		if tr.Tracer() != nil {
			t.Errorf("env %q: a tracer while off", e)
		}
		if err := tr.Shutdown(t.Context()); err != nil {
			t.Errorf("env %q: Shutdown while off: %v", e, err)
		}
	}
}

func TestMalformedVariablesAreNamed(t *testing.T) {
	on := []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"}
	for _, tt := range []struct {
		env  []string
		want string
	}{
		{append(on, "OTEL_TRACES_SAMPLER", "sometimes"), "OTEL_TRACES_SAMPLER"},
		{append(on, "OTEL_TRACES_SAMPLER", "traceidratio", "OTEL_TRACES_SAMPLER_ARG", "1%"), "OTEL_TRACES_SAMPLER_ARG"},
		{append(on, "OTEL_TRACES_SAMPLER", "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG", "2"), "OTEL_TRACES_SAMPLER_ARG"},
		{append(on, "OTEL_EXPORTER_OTLP_PROTOCOL", "thrift"), "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{append(on, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "udp"), "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"},
		{append(on, "OTEL_SDK_DISABLED", "yes"), "OTEL_SDK_DISABLED"},
		{append(on, "OTEL_TRACES_EXPORTER", "zipkin"), "OTEL_TRACES_EXPORTER"},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT", "127.0.0.1:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{[]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://collector/v1/traces"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
	} {
		tr, err := tracing.Setup(t.Context(), env(tt.env...), discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("env %q: error %v, want one line naming %s", tt.env, err, tt.want)
		}
		if tr != nil {
			_ = tr.Shutdown(t.Context())
		}
	}
}

// export sets tracing up from e, records one span and shuts down, which must
// deliver the span to the receiver.
func export(t *testing.T, e ...string) {
	t.Helper()
	tr, err := tracing.Setup(t.Context(), env(e...), discard)
	if err != nil || tr == nil {
		t.Fatalf("Setup: %v, %v", tr, err)
	}
	_, span := tr.Tracer().Start(context.Background(), "test span")
	span.End()
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestShutdownDeliversOverEachProtocol(t *testing.T) {
	rcv := tracingtest.Start(t)
	export(t, "OTEL_EXPORTER_OTLP_ENDPOINT", rcv.URL)
	export(t, "OTEL_EXPORTER_OTLP_ENDPOINT", rcv.URL+"/base/", "OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "OTEL_SERVICE_NAME", "json")
	export(t, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", rcv.URL+"/exactly/here", "OTEL_SERVICE_NAME", "exact")
	export(t, "OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+rcv.GRPC, "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "OTEL_SERVICE_NAME", "grpc")

	spans := rcv.Spans()
	var services []string
	for _, s := range spans {
		if s.Name != "test span" || s.Scope != tracing.ScopeName {
			t.Errorf("received %v from scope %q", s, s.Scope)
		}
		services = append(services, s.Service)
	}
	if want := []string{tracing.DefaultServiceName, "json", "exact", "grpc"}; strings.Join(services, " ") != strings.Join(want, " ") {
		t.Errorf("services %q, want %q", services, want)
	}
	// The generic endpoint is a base URL; the traces endpoint is used as is.
	if got, want := strings.Join(rcv.Paths(), " "), "/v1/traces /base/v1/traces /exactly/here"; got != want {
		t.Errorf("HTTP exports to %q, want %q", got, want)
	}
}

func TestSamplers(t *testing.T) {
	sampledParent := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	unsampledParent := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
	on := []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1"}
	for _, tt := range []struct {
		sampler, arg, parent string
		recorded             bool
	}{
		{"", "", "", true}, // parentbased_always_on
		{"", "", sampledParent, true},
		{"", "", unsampledParent, false}, // the gateway decided
		{"always_on", "", unsampledParent, true},
		{"always_off", "", sampledParent, false},
		{"parentbased_always_off", "", "", false},
		{"parentbased_always_off", "", sampledParent, true},
		{"traceidratio", "0", "", false},
		{"traceidratio", "1", "", true},
		{"parentbased_traceidratio", "0", sampledParent, true},
		{"parentbased_traceidratio", "0", "", false},
	} {
		tr, err := tracing.Setup(t.Context(), env(append(on, "OTEL_TRACES_SAMPLER", tt.sampler, "OTEL_TRACES_SAMPLER_ARG", tt.arg)...), discard)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if tt.parent != "" {
			ctx = propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": tt.parent})
		}
		_, span := tr.Tracer().Start(ctx, "s", trace.WithSpanKind(trace.SpanKindServer))
		if span.IsRecording() != tt.recorded {
			t.Errorf("sampler %q arg %q parent %q: recording %v, want %v", tt.sampler, tt.arg, tt.parent, span.IsRecording(), tt.recorded)
		}
		span.End()
		// Nothing listens at the endpoint: do not wait for the export.
		cctx, cancel := context.WithCancel(t.Context())
		cancel()
		_ = tr.Shutdown(cctx)
	}
}
