// Package tracing sets up OpenTelemetry traces from the standard OTEL_*
// environment variables, with the official Go SDK and its OTLP exporters, and
// names the attributes the service puts on its spans.
//
// Tracing is off unless an OTLP endpoint is configured; then the rest of the
// service is handed a nil trace.Tracer and does no tracing work at all.
package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the service's spans.
const ScopeName = "github.com/authgear/authgear-forwardauth"

// DefaultServiceName is service.name unless OTEL_SERVICE_NAME says otherwise.
const DefaultServiceName = "authgear-forwardauth"

// Attributes of the /auth span. Never a credential, a cache key or a user id.
const (
	// Outcome is the decision, as the label of forwardauth_decisions_total.
	Outcome = attribute.Key("forwardauth.outcome")
	// Tier is what answered: in-process, redis, resolver or jwt.
	Tier = attribute.Key("forwardauth.tier")
	// Policy is the route's policy as parsed from the auth URL's query.
	Policy = attribute.Key("forwardauth.policy")
	// Coalesced marks a request that waited for another one's identical miss.
	Coalesced = attribute.Key("forwardauth.coalesced")
	// Stale marks an allow served past its TTL while Authgear failed.
	Stale = attribute.Key("forwardauth.stale")
	// Result is a Redis lookup's (hit, miss, error) or a resolver call's
	// (allow, deny, error).
	Result = attribute.Key("forwardauth.result")
)

// The values of Tier.
var (
	TierLocal    = Tier.String("in-process")
	TierRedis    = Tier.String("redis")
	TierResolver = Tier.String("resolver")
	TierJWT      = Tier.String("jwt")
)

// Tracing is the SDK's tracer provider, built from the environment.
type Tracing struct {
	provider *sdktrace.TracerProvider
}

// Usage is what -h says about tracing.
const Usage = `
Tracing: OpenTelemetry, off unless an OTLP endpoint is set (README, "Tracing"):
  OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
  OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG
  OTEL_SERVICE_NAME, OTEL_SDK_DISABLED, OTEL_TRACES_EXPORTER
`

// Setup builds tracing from the standard variables read through getenv. It
// returns nil (tracing off) unless OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
// OTEL_EXPORTER_OTLP_ENDPOINT is set, and also when OTEL_SDK_DISABLED=true or
// OTEL_TRACES_EXPORTER=none. A malformed variable is an error naming it.
//
// The exporter's other settings (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT,
// _COMPRESSION, _CERTIFICATE...), OTEL_RESOURCE_ATTRIBUTES and OTEL_BSP_* are
// read by the SDK itself from the process environment. Export errors are
// logged to logger, at most one every 10 seconds.
func Setup(ctx context.Context, getenv func(string) string, logger *slog.Logger) (*Tracing, error) {
	tracesEndpoint := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	endpoint := getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	if tracesEndpoint == "" && endpoint == "" {
		return nil, nil
	}
	switch v := strings.TrimSpace(getenv("OTEL_SDK_DISABLED")); strings.ToLower(v) {
	case "true":
		return nil, nil
	case "", "false":
	default:
		return nil, fmt.Errorf("OTEL_SDK_DISABLED=%q: want true or false", v)
	}
	switch v := getenv("OTEL_TRACES_EXPORTER"); v {
	case "none":
		return nil, nil
	case "", "otlp":
	default:
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: only otlp (or none) is supported", v)
	}

	sampler, err := samplerFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	exporter, err := newExporter(ctx, getenv, tracesEndpoint, endpoint)
	if err != nil {
		return nil, err
	}
	service := getenv("OTEL_SERVICE_NAME")
	if service == "" {
		service = DefaultServiceName
	}
	// Later options win: OTEL_RESOURCE_ATTRIBUTES over the defaults, and
	// OTEL_SERVICE_NAME (read through getenv) over everything.
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithProcessPID(),
		resource.WithFromEnv(),
		resource.WithAttributes(attribute.String("service.name", service)),
	)
	if err != nil && res == nil {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %v", err)
	}
	if err != nil {
		logger.Warn("tracing: some resource attributes were left out", "error", err.Error())
	}

	otel.SetErrorHandler(throttledLog(logger, 10*time.Second))
	provider := sdktrace.NewTracerProvider(
		sdktrace.WithSampler(sampler),
		sdktrace.WithResource(res),
		sdktrace.WithBatcher(exporter),
	)
	return &Tracing{provider: provider}, nil
}

// Tracer is the service's tracer; nil when t is nil (tracing off).
func (t *Tracing) Tracer() trace.Tracer {
	if t == nil {
		return nil
	}
	return t.provider.Tracer(ScopeName)
}

// Shutdown exports the spans still buffered and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

// newExporter is the OTLP exporter for OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL:
// http/protobuf (the default), http/json or grpc.
func newExporter(ctx context.Context, getenv func(string) string, tracesEndpoint, endpoint string) (sdktrace.SpanExporter, error) {
	name, protocol := "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		name, protocol = "OTEL_EXPORTER_OTLP_PROTOCOL", getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if protocol == "" {
		protocol = "http/protobuf"
	}
	// The signal-specific endpoint is used as it is; the generic one is a
	// base URL to which HTTP exporters append /v1/traces.
	endpointVar, target := "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", tracesEndpoint
	if target == "" {
		endpointVar, target = "OTEL_EXPORTER_OTLP_ENDPOINT", endpoint
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s=%q: want an http:// or https:// URL", endpointVar, target)
	}
	if tracesEndpoint == "" && protocol != "grpc" {
		u = u.JoinPath("v1/traces")
	}
	switch protocol {
	case "http/protobuf", "http/json":
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(u.String())}
		if protocol == "http/json" {
			opts = append(opts, otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON))
		}
		return otlptracehttp.New(ctx, opts...)
	case "grpc":
		return otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(u.String()))
	}
	return nil, fmt.Errorf("%s=%q: want http/protobuf, http/json or grpc", name, protocol)
}

// samplerFromEnv reads OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG. The
// default, as the specification says, follows the caller's decision
// (parentbased_always_on): a gateway that samples decides for the service.
func samplerFromEnv(getenv func(string) string) (sdktrace.Sampler, error) {
	name := getenv("OTEL_TRACES_SAMPLER")
	arg := getenv("OTEL_TRACES_SAMPLER_ARG")
	ratio := func() (float64, error) {
		if arg == "" {
			return 1, nil
		}
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return 0, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%q: want a ratio between 0 and 1", arg)
		}
		return r, nil
	}
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio", "parentbased_traceidratio":
		r, err := ratio()
		if err != nil {
			return nil, err
		}
		if name == "traceidratio" {
			return sdktrace.TraceIDRatioBased(r), nil
		}
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r)), nil
	}
	return nil, fmt.Errorf("OTEL_TRACES_SAMPLER=%q: want always_on, always_off, traceidratio, "+
		"parentbased_always_on, parentbased_always_off or parentbased_traceidratio", name)
}

// throttledLog logs the SDK's errors (a collector that cannot be reached
// fails every export) without flooding the log.
func throttledLog(logger *slog.Logger, every time.Duration) otel.ErrorHandler {
	var next atomic.Int64
	return otel.ErrorHandlerFunc(func(err error) {
		now := time.Now().UnixNano()
		if n := next.Load(); now < n || !next.CompareAndSwap(n, now+int64(every)) {
			return
		}
		logger.Warn("tracing: exporting spans failed", "error", err.Error())
	})
}
