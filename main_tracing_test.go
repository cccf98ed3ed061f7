package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/authgear/authgear-forwardauth/resolver"
	"github.com/authgear/authgear-forwardauth/resolver/resolvertest"
	"github.com/authgear/authgear-forwardauth/tracing/tracingtest"
)

func TestHelpNamesTheTracingVariables(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"forwardauth", "-h"}, env(nil), &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_SAMPLER", "OTEL_SERVICE_NAME", "OTEL_SDK_DISABLED"} {
		if !strings.Contains(out.String(), v) {
			t.Errorf("-h does not mention %s", v)
		}
	}
}

func TestTracingConfigErrorsNameTheVariable(t *testing.T) {
	err := run(context.Background(), []string{"forwardauth"}, env(map[string]string{
		"AUTHGEAR_ENDPOINT":           "https://p.example",
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
		"OTEL_TRACES_SAMPLER":         "sometimes",
	}), &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "OTEL_TRACES_SAMPLER") {
		t.Fatalf("error %v, want one naming OTEL_TRACES_SAMPLER", err)
	}
}

// TestTracesReachTheCollectorByShutdown: with an OTLP endpoint set, the
// service continues the caller's trace, calls Authgear with traceparent, and
// has delivered its spans when run returns (SIGTERM flushes the exporter).
func TestTracesReachTheCollectorByShutdown(t *testing.T) {
	rcv := tracingtest.Start(t)
	ag := resolvertest.NewServer("project.example")
	defer ag.Close()
	ag.AddUser(resolver.Identity{UserID: "u1"})
	secretToken := resolvertest.Token("secretTokenValue")
	ag.AddSession(resolvertest.Bearer, secretToken, "u1")

	addr := "127.0.0.1:" + freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"forwardauth"}, env(map[string]string{
			"AUTHGEAR_ENDPOINT":           "https://project.example",
			"AUTHGEAR_RESOLVER_URL":       ag.ResolverURL().String(),
			"LISTEN_ADDR":                 addr,
			"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.URL,
			"OTEL_SERVICE_NAME":           "forwardauth-main-test",
		}), &bytes.Buffer{}, &bytes.Buffer{})
	}()
	waitReady(t, "http://"+addr+"/readyz")

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest("GET", "http://"+addr+"/auth", nil)
	req.Header.Set("Authorization", "Bearer "+secretToken)
	req.Header.Set("Traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}

	spans := rcv.Spans()
	auth := tracingtest.Named(spans, "forwardauth-main-test", "GET /auth")
	call := tracingtest.Named(spans, "forwardauth-main-test", "authgear resolve")
	if len(auth) != 1 || len(call) != 1 {
		t.Fatalf("received by shutdown:\n%swant one /auth span and one resolver span", tracingtest.Dump(spans))
	}
	if auth[0].TraceID != traceID || auth[0].ParentSpanID != "00f067aa0ba902b7" || call[0].ParentSpanID != auth[0].SpanID {
		t.Errorf("spans not in the caller's trace:\n%s", tracingtest.Dump(spans))
	}
	if got := auth[0].Attributes["forwardauth.tier"]; got != "resolver" {
		t.Errorf("tier %q", got)
	}
	if got, want := ag.Traceparents(), "00-"+traceID+"-"+call[0].SpanID+"-01"; len(got) != 1 || got[0] != want {
		t.Errorf("Authgear received %q, want %s", got, want)
	}
	for _, s := range spans {
		for k, v := range s.Attributes {
			if strings.Contains(v, secretToken) {
				t.Errorf("span %s attribute %s carries the token", s.Name, k)
			}
		}
	}
}
