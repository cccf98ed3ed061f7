//go:build e2e

package e2e

import (
	"strings"
	"testing"

	"github.com/authgear/authgear-forwardauth/resolver/resolvertest"
	"github.com/authgear/authgear-forwardauth/tracing/tracingtest"
)

// One request through a real gateway with tracing on in the gateway and in
// the service, both exporting to one OTLP receiver started here: the
// gateway's spans and the service's share a trace, the service's /auth span
// is a child of the gateway's span that called it, the Redis lookup and the
// resolver call are children of the /auth span, and the fake Authgear
// received the resolver span as traceparent.

// quickBatches makes the exporters send every span within a moment instead of
// every 5 s; the service, Traefik and Caddy all read it (OTEL_BSP_*).
const quickBatches = "100"

// service is the service.name of the service in these tests.
const service = "forwardauth-e2e"

// tracedStack is the stack with env (NAME=value) added to the service's.
func tracedStack(t *testing.T, env ...string) *stack {
	return newStackWith(t, stackOptions{setup: func(*resolvertest.Server) []string { return env }})
}

func TestTracingThroughTraefik(t *testing.T) {
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", quickBatches)
	rcv := tracingtest.Start(t)
	st := tracedStack(t, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.URL, "OTEL_SERVICE_NAME="+service)
	// Traefik's own tracing, OTLP over HTTP: the shipped traefik.yml's
	// commented block, uncommented.
	base := startTraefikWith(t, st, `#tracing:
#  serviceName: traefik
#  sampleRate: 1.0
#  otlp:
#    http:
#      endpoint: http://otel-collector:4318/v1/traces`, `tracing:
  serviceName: traefik
  sampleRate: 1.0
  otlp:
    http:
      endpoint: `+rcv.URL+`/v1/traces`)
	checkGatewayTrace(t, st, rcv, base, "traefik")
}

func TestTracingThroughCaddy(t *testing.T) {
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", quickBatches)
	rcv := tracingtest.Start(t)
	// Both over OTLP/gRPC this time, Caddy's other protocol (its default,
	// like the service's, is OTLP/HTTP).
	otlp := []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + rcv.GRPC, "OTEL_EXPORTER_OTLP_PROTOCOL=grpc"}
	st := tracedStack(t, append(otlp, "OTEL_SERVICE_NAME="+service)...)
	base := startCaddyWith(t, st, "\ttracing", append(otlp, "OTEL_SERVICE_NAME=caddy")...)
	checkGatewayTrace(t, st, rcv, base, "caddy")
}

// checkGatewayTrace sends one signed-in request through the gateway at base
// and checks the trace the receiver gets.
func checkGatewayTrace(t *testing.T, st *stack, rcv *tracingtest.Receiver, base, gateway string) {
	t.Helper()
	r := do(t, base, "GET", "/traced", "", "Authorization", "Bearer "+tokenAlice)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	r.echoed(t)

	// The /auth span of that request (the readiness probes before it had no
	// credential), the gateway's span that called it and the gateway's root
	// span, the resolver call, the Redis lookup.
	var auth, caller, root, call, lookup tracingtest.Span
	spans := rcv.WaitFor(t, "the request's spans from "+gateway+" and the service", func(spans []tracingtest.Span) bool {
		auth, caller, root, call, lookup = tracingtest.Span{}, tracingtest.Span{}, tracingtest.Span{}, tracingtest.Span{}, tracingtest.Span{}
		for _, s := range tracingtest.Named(spans, service, "GET /auth") {
			if s.Attributes["forwardauth.outcome"] == "allow" {
				auth = s
			}
		}
		if auth.SpanID == "" {
			return false
		}
		for _, s := range spans {
			switch {
			case s.Service == gateway && s.SpanID == auth.ParentSpanID:
				caller = s
				if s.ParentSpanID == "" {
					root = s
				}
			case s.Service == gateway && s.TraceID == auth.TraceID && s.ParentSpanID == "":
				root = s
			case s.Service == service && s.Name == "authgear resolve" && s.TraceID == auth.TraceID:
				call = s
			case s.Service == service && s.Name == "redis GET" && s.TraceID == auth.TraceID:
				lookup = s
			}
		}
		return caller.SpanID != "" && root.SpanID != "" && call.SpanID != "" && lookup.SpanID != ""
	})

	// From the /auth span up, every ancestor is the gateway's, down from the
	// gateway's root span: the whole request is one trace.
	byID := map[string]tracingtest.Span{}
	for _, s := range spans {
		if s.TraceID == auth.TraceID {
			byID[s.SpanID] = s
		}
	}
	var chain []string
	for s := auth; s.ParentSpanID != ""; {
		p, ok := byID[s.ParentSpanID]
		if !ok || p.Service != gateway {
			t.Fatalf("%v: parent %s is not a span of %s in the trace:\n%s", s, s.ParentSpanID, gateway, tracingtest.Dump(spans))
		}
		chain = append(chain, p.Name)
		s = p
	}
	if chain[len(chain)-1] != root.Name {
		t.Errorf("the /auth span's ancestors %q do not end at %s's root span %v", chain, gateway, root)
	}
	t.Logf("/auth span's ancestors in %s: %q", gateway, chain)
	for name, s := range map[string]tracingtest.Span{"resolver call": call, "Redis lookup": lookup} {
		if s.ParentSpanID != auth.SpanID {
			t.Errorf("the %s %v is not a child of the /auth span %v", name, s, auth)
		}
	}
	for k, want := range map[string]string{"forwardauth.tier": "resolver", "forwardauth.policy": "default", "http.response.status_code": "200"} {
		if got := auth.Attributes[k]; got != want {
			t.Errorf("/auth span: %s = %q, want %q", k, got, want)
		}
	}
	want := "00-" + auth.TraceID + "-" + call.SpanID + "-01"
	if got := st.authgear.Traceparents(); len(got) != 1 || got[0] != want {
		t.Errorf("Authgear received traceparent %q, want [%s] (the resolver span)", got, want)
	}
	for _, s := range spans {
		for k, v := range s.Attributes {
			if v == tokenAlice || v == "Bearer "+tokenAlice {
				t.Errorf("span %v: attribute %s carries the credential", s, k)
			}
		}
	}
}

// TestTraceparentThroughNginx: Debian's nginx has no OpenTelemetry module,
// but its auth_request sub-request carries the client's headers, so a trace
// begun before nginx (a load balancer, a client) goes on in the service and
// to Authgear.
func TestTraceparentThroughNginx(t *testing.T) {
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", quickBatches)
	rcv := tracingtest.Start(t)
	st := tracedStack(t, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.URL, "OTEL_SERVICE_NAME="+service)
	base := startNginx(t, st)
	const traceID, parent = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
	r := do(t, base, "GET", "/traced", "", "Authorization", "Bearer "+tokenAlice,
		"Traceparent", "00-"+traceID+"-"+parent+"-01")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	spans := rcv.WaitFor(t, "the service's /auth span", func(spans []tracingtest.Span) bool {
		for _, s := range tracingtest.Named(spans, service, "GET /auth") {
			if s.TraceID == traceID {
				return true
			}
		}
		return false
	})
	for _, s := range tracingtest.Named(spans, service, "GET /auth") {
		if s.TraceID == traceID && s.ParentSpanID != parent {
			t.Errorf("/auth span %v: parent %s, want the client's %s", s, s.ParentSpanID, parent)
		}
	}
	if got := st.authgear.Traceparents(); len(got) != 1 || !strings.HasPrefix(got[0], "00-"+traceID+"-") {
		t.Errorf("Authgear received traceparent %q, want one in trace %s", got, traceID)
	}
}
