package handler

import (
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/authgear/authgear-forwardauth/internal/stripedcounter"
	"github.com/authgear/authgear-forwardauth/tracing"
)

// outcome counts one kind of answer of /auth and, when tracing, names it on
// the request's span.
type outcome struct {
	counter *stripedcounter.Counter // every /auth request counts one
	attrs   []attribute.KeyValue    // nil without tracing
}

// Inc counts the outcome of r.
func (o outcome) Inc(r *http.Request) {
	o.counter.Inc()
	if o.attrs != nil {
		trace.SpanFromContext(r.Context()).SetAttributes(o.attrs...)
	}
}

// newOutcome returns a constructor of the outcomes counted in v; extra
// attributes go on the span with the outcome's name.
func newOutcome(v *stripedcounter.CounterVec, traced bool) func(name string, extra ...attribute.KeyValue) outcome {
	return func(name string, extra ...attribute.KeyValue) outcome {
		o := outcome{counter: v.WithLabelValues(name)}
		if traced {
			o.attrs = append([]attribute.KeyValue{tracing.Outcome.String(name)}, extra...)
		}
		return o
	}
}

// traceAuth gives each /auth request a server span that continues the
// gateway's W3C traceparent. The decision, the tier that answered and the
// policy are added on the way; never a credential. A request that is not
// sampled costs only the span's context.
func traceAuth(next http.Handler, tracer trace.Tracer) http.Handler {
	server := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
	// Span names and attributes for each method and route, made once. Any
	// token is a valid method: others are _OTHER, as OpenTelemetry says.
	type start struct {
		name  string
		attrs []attribute.KeyValue
	}
	starts := map[string]*[2]start{}
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace, "_OTHER"} {
		s := new([2]start)
		for i, route := range []string{"/auth", "/auth/*"} {
			s[i] = start{m + " " + route, []attribute.KeyValue{
				attribute.String("http.request.method", m), attribute.String("http.route", route)}}
		}
		starts[m] = s
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		_, remote := r.Header["Traceparent"] // the server canonicalizes names
		if remote {
			ctx = propagation.TraceContext{}.Extract(ctx, propagation.HeaderCarrier(r.Header))
		}
		byRoute, ok := starts[r.Method]
		if !ok {
			byRoute = starts["_OTHER"]
		}
		st := &byRoute[0]
		if r.URL.Path != "/auth" {
			st = &byRoute[1]
		}
		ctx, span := tracer.Start(ctx, st.name, server...)
		defer span.End()
		switch {
		case !span.IsRecording() && !remote:
			// Not sampled, and no caller's trace: the span's context would
			// only tell Authgear not to sample a trace nobody records. Spare
			// the request's copy.
			next.ServeHTTP(w, r)
			return
		case !span.IsRecording():
			next.ServeHTTP(w, r.WithContext(ctx)) // the gateway's decision goes on to Authgear
			return
		}
		span.SetAttributes(st.attrs...)
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r.WithContext(ctx))
		span.SetAttributes(attribute.Int("http.response.status_code", sw.code))
		if sw.code >= 500 {
			span.SetStatus(codes.Error, http.StatusText(sw.code))
		}
	})
}

// statusWriter remembers the status of the answer.
type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// maxPolicyAttr bounds the policy attribute: with Caddy, a client's query
// may be one of the readings (see routePolicies).
const maxPolicyAttr = 256

// tracePolicy names the route's policy on r's span, as the query that would
// ask for it ("default" for none; two readings joined by " and ").
func tracePolicy(r *http.Request, route routePolicy) {
	span := trace.SpanFromContext(r.Context())
	if !span.IsRecording() {
		return // not sampled: do not build the string
	}
	var b strings.Builder
	for i, p := range route.p[:route.n] {
		if i > 0 {
			b.WriteString(" and ")
		}
		b.WriteString(p.String())
	}
	s := b.String()
	if len(s) > maxPolicyAttr {
		s = s[:maxPolicyAttr] + "..."
	}
	// Invalid UTF-8 would make the exporter drop the whole batch.
	span.SetAttributes(tracing.Policy.String(strings.ToValidUTF8(s, "\uFFFD")))
}

// String is the policy as the auth URL's query that asks for it.
func (p policy) String() string {
	var parts []string
	if p.allowAnonymous {
		parts = append(parts, "allow_anonymous")
	}
	if p.requireVerified {
		parts = append(parts, "require_verified")
	}
	if len(p.roles) > 0 {
		parts = append(parts, "roles="+strings.Join(p.roles, ","))
	}
	if p.optional {
		parts = append(parts, "optional")
	}
	if p.preflightOnly {
		parts = append(parts, "preflight_only")
	}
	if len(parts) == 0 {
		return "default"
	}
	return strings.Join(parts, "&")
}
