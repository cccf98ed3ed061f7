package handler

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/authgear/authgear-forwardauth/resolver/resolvertest"
	"github.com/authgear/authgear-forwardauth/tracing/tracingtest"
)

// The gateway's span, as a traceparent.
const (
	gatewayTraceID = "0af7651916cd43dd8448eb211c80319c"
	gatewaySpanID  = "b7ad6b7169203331"
	gatewayParent  = "00-" + gatewayTraceID + "-" + gatewaySpanID + "-01"
)

func attr(s sdktrace.ReadOnlySpan, key attribute.Key) string {
	for _, a := range s.Attributes() {
		if a.Key == key {
			return a.Value.String()
		}
	}
	return ""
}

func wantAttrs(t *testing.T, s sdktrace.ReadOnlySpan, kv ...string) {
	t.Helper()
	for i := 0; i+1 < len(kv); i += 2 {
		if got := attr(s, attribute.Key(kv[i])); got != kv[i+1] {
			t.Errorf("span %q: %s = %q, want %q", s.Name(), kv[i], got, kv[i+1])
		}
	}
}

func TestAuthSpanContinuesTheGatewaysTraceToAuthgear(t *testing.T) {
	sr, tracer := tracingtest.Recorder(t, sdktrace.ParentBased(sdktrace.AlwaysSample()))
	s := newStack(t, stackOptions{tracer: tracer})
	w := s.do("GET", "/auth?roles=admin", hdr("Authorization", "Bearer "+aliceToken, "Traceparent", gatewayParent,
		"Cookie", "app_session="+aliceApp+"; theme=dark"))
	if w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	spans := sr.Ended()
	auth := tracingtest.OneEnded(t, spans, "GET /auth")
	if got := auth.SpanContext().TraceID().String(); got != gatewayTraceID {
		t.Errorf("/auth span in trace %s, want the gateway's %s", got, gatewayTraceID)
	}
	if p := auth.Parent(); p.SpanID().String() != gatewaySpanID || !p.IsRemote() {
		t.Errorf("/auth span's parent %s (remote %v), want the gateway's span %s", p.SpanID(), p.IsRemote(), gatewaySpanID)
	}
	if auth.SpanKind() != trace.SpanKindServer {
		t.Errorf("/auth span kind %v", auth.SpanKind())
	}
	wantAttrs(t, auth, "forwardauth.outcome", "allow", "forwardauth.tier", "resolver",
		"forwardauth.policy", "roles=admin", "http.response.status_code", "200", "http.route", "/auth")

	call := tracingtest.OneEnded(t, spans, "authgear resolve")
	if call.Parent().SpanID() != auth.SpanContext().SpanID() || call.SpanContext().TraceID() != auth.SpanContext().TraceID() {
		t.Errorf("resolver span's parent %s, want the /auth span %s", call.Parent().SpanID(), auth.SpanContext().SpanID())
	}
	wantAttrs(t, call, "forwardauth.result", "allow")
	want := "00-" + gatewayTraceID + "-" + call.SpanContext().SpanID().String() + "-01"
	if got := s.authgear.Traceparents(); len(got) != 1 || got[0] != want {
		t.Errorf("Authgear received traceparent %q, want [%s] (the resolver span)", got, want)
	}

	// Again: answered in process, without a resolver call.
	s.do("GET", "/auth", hdr("Authorization", "Bearer "+aliceToken, "Cookie", "app_session="+aliceApp+"; theme=dark"))
	spans = sr.Ended()
	auths := tracingtest.Ended(spans, "GET /auth")
	if len(auths) != 2 || len(tracingtest.Ended(spans, "authgear resolve")) != 1 {
		t.Fatalf("spans after a hit: %d /auth, %d resolver", len(auths), len(tracingtest.Ended(spans, "authgear resolve")))
	}
	wantAttrs(t, auths[1], "forwardauth.outcome", "allow", "forwardauth.tier", "in-process", "forwardauth.policy", "default")
	if auths[1].Parent().IsValid() {
		t.Errorf("a request without traceparent continued trace %s", auths[1].Parent().TraceID())
	}

	// No credential in any span.
	for _, sp := range spans {
		for _, a := range sp.Attributes() {
			if v := a.Value.String(); strings.Contains(v, aliceToken) || strings.Contains(v, aliceApp) {
				t.Errorf("span %q attribute %s carries a credential: %q", sp.Name(), a.Key, v)
			}
		}
		if strings.Contains(sp.Status().Description, "alice") {
			t.Errorf("span %q status carries a credential: %q", sp.Name(), sp.Status().Description)
		}
	}
}

func TestAuthSpanNamesEveryOutcome(t *testing.T) {
	sr, tracer := tracingtest.Recorder(t, sdktrace.AlwaysSample())
	s := newStack(t, stackOptions{tracer: tracer})
	tests := []struct {
		target string
		header http.Header
		setup  func(*resolvertest.Server)
		code   int
		attrs  []string
	}{
		{"/auth", nil, nil, 401, []string{"forwardauth.outcome", "no_credential", "forwardauth.tier", ""}},
		{"/auth", hdr("Authorization", "Bearer a", "Authorization", "Bearer b"), nil, 401, []string{"forwardauth.outcome", "malformed"}},
		{"/auth", hdr("Authorization", "Bearer"), nil, 401, []string{"forwardauth.outcome", "misshapen", "forwardauth.tier", ""}},
		{"/auth", bearerHeader(nopeToken), nil, 401, []string{"forwardauth.outcome", "deny", "forwardauth.tier", "resolver"}},
		{"/auth?optional", bearerHeader(nopeToken), nil, 200, []string{"forwardauth.outcome", "optional_anonymous", "forwardauth.policy", "optional"}},
		{"/auth?roles=admin&require_verified", bearerHeader(bobToken), nil, 403,
			[]string{"forwardauth.outcome", "forbidden", "forwardauth.policy", "require_verified&roles=admin"}},
		{"/auth?rolez=admin", bearerHeader(aliceToken), nil, 500, []string{"forwardauth.outcome", "policy_error"}},
		{"/auth", bearerHeader(resolvertest.Token("fresh")), func(ag *resolvertest.Server) { ag.SetFailure(resolvertest.Status500) }, 503,
			[]string{"forwardauth.outcome", "unavailable", "forwardauth.tier", "resolver"}},
	}
	for _, tt := range tests {
		if tt.setup != nil {
			tt.setup(s.authgear)
		}
		before := len(sr.Ended())
		if w := s.do("GET", tt.target, tt.header); w.Code != tt.code {
			t.Errorf("%s %v: status %d, want %d", tt.target, tt.header, w.Code, tt.code)
			continue
		}
		auth := tracingtest.OneEnded(t, sr.Ended()[before:], "GET /auth")
		wantAttrs(t, auth, tt.attrs...)
		wantAttrs(t, auth, "http.response.status_code", strconv.Itoa(tt.code))
		if isErr := auth.Status().Code == codes.Error; isErr != (tt.code >= 500) {
			t.Errorf("%s: status %d, span status %v", tt.target, tt.code, auth.Status())
		}
	}
	// The failed call is an error on the resolver span too.
	calls := tracingtest.Ended(sr.Ended(), "authgear resolve")
	last := calls[len(calls)-1]
	if last.Status().Code != codes.Error || attr(last, "forwardauth.result") != "error" {
		t.Errorf("failed resolver call: status %v, result %q", last.Status(), attr(last, "forwardauth.result"))
	}
}

func TestAuthSpanNamesTheJWTTier(t *testing.T) {
	sr, tracer := tracingtest.Recorder(t, sdktrace.AlwaysSample())
	s := newStack(t, stackOptions{tracer: tracer, jwt: JWTLocal})
	if w := s.do("GET", "/auth", bearerHeader(s.authgear.IssueJWT(alice.UserID))); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	wantAttrs(t, tracingtest.OneEnded(t, sr.Ended(), "GET /auth"), "forwardauth.outcome", "allow", "forwardauth.tier", "jwt")
	tok := s.authgear.IssueJWT(alice.UserID)
	for range 2 { // the second time a byte-for-byte hit of the verified tokens
		if w := s.do("GET", "/auth", bearerHeader(tok)); w.Code != 200 {
			t.Fatalf("status %d", w.Code)
		}
	}
	wantAttrs(t, tracingtest.Ended(sr.Ended(), "GET /auth")[2], "forwardauth.outcome", "allow", "forwardauth.tier", "jwt")
	if w := s.do("GET", "/auth", bearerHeader(s.authgear.IssueJWT(alice.UserID, resolvertest.WithSignature("c2lnbmF0dXJl")))); w.Code != 401 {
		t.Fatalf("status %d", w.Code)
	}
	wantAttrs(t, tracingtest.Ended(sr.Ended(), "GET /auth")[3], "forwardauth.outcome", "jwt_invalid", "forwardauth.tier", "jwt")
}

// A gateway that did not sample the request: nothing is recorded, and
// Authgear still learns the trace (not sampled) so that it does not start one.
func TestUnsampledTraceIsPropagatedButNotRecorded(t *testing.T) {
	sr, tracer := tracingtest.Recorder(t, sdktrace.ParentBased(sdktrace.AlwaysSample()))
	s := newStack(t, stackOptions{tracer: tracer})
	unsampled := "00-" + gatewayTraceID + "-" + gatewaySpanID + "-00"
	if w := s.do("GET", "/auth?roles=admin", hdr("Authorization", "Bearer "+aliceToken, "Traceparent", unsampled)); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	if n := len(sr.Ended()); n != 0 {
		t.Errorf("%d spans recorded for an unsampled trace", n)
	}
	got := s.authgear.Traceparents()
	if len(got) != 1 || !strings.HasPrefix(got[0], "00-"+gatewayTraceID+"-") || !strings.HasSuffix(got[0], "-00") ||
		strings.Contains(got[0], gatewaySpanID) {
		t.Errorf("Authgear received %q, want the gateway's trace, a span of ours, not sampled", got)
	}
}

// A trace that would begin here and is not sampled costs no traceparent.
func TestUnsampledRootSendsNoTraceparent(t *testing.T) {
	sr, tracer := tracingtest.Recorder(t, sdktrace.ParentBased(sdktrace.NeverSample()))
	s := newStack(t, stackOptions{tracer: tracer})
	if w := s.do("GET", "/auth", bearerHeader(aliceToken)); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	if n := len(sr.Ended()); n != 0 {
		t.Errorf("%d spans recorded, none sampled", n)
	}
	if got := s.authgear.Traceparents(); len(got) != 0 {
		t.Errorf("Authgear received %q for a trace nobody records", got)
	}
	// With a gateway's sampled trace, the same sampler follows it.
	if w := s.do("GET", "/auth", hdr("Authorization", "Bearer "+bobToken, "Traceparent", gatewayParent)); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	if n := len(tracingtest.Ended(sr.Ended(), "GET /auth")); n != 1 || len(s.authgear.Traceparents()) != 1 {
		t.Errorf("%d /auth spans and traceparents %q, want the gateway's trace followed", n, s.authgear.Traceparents())
	}
}

// Off (no tracer): the gateway's traceparent is not passed on either, since
// only the credentials and client details ever reach Authgear.
func TestTracingOffSendsNoTraceparent(t *testing.T) {
	s := newStack(t, stackOptions{})
	if w := s.do("GET", "/auth", hdr("Authorization", "Bearer "+aliceToken, "Traceparent", gatewayParent)); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	if got := s.authgear.Traceparents(); len(got) != 0 {
		t.Errorf("Authgear received traceparent %q with tracing off", got)
	}
}
