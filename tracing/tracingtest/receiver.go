// Package tracingtest is an OTLP trace receiver for tests: it decodes the
// official OTLP protobufs (go.opentelemetry.io/proto/otlp) sent over HTTP
// (http/protobuf or http/json, gzip or not) or gRPC, and keeps the spans.
package tracingtest

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	_ "google.golang.org/grpc/encoding/gzip" // Traefik compresses its gRPC exports
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Span is one received span, with its IDs in hex as in a traceparent.
type Span struct {
	Service      string // the resource's service.name
	Scope        string
	Name         string
	Kind         tracepb.Span_SpanKind
	TraceID      string
	SpanID       string
	ParentSpanID string // "" for a root span
	Attributes   map[string]string
	Links        []Link
	Error        bool // status code ERROR
	Start, End   time.Time
}

// Link is a span link.
type Link struct{ TraceID, SpanID string }

func (s Span) String() string {
	return fmt.Sprintf("%s %q trace=%s span=%s parent=%s", s.Service, s.Name, s.TraceID, s.SpanID, s.ParentSpanID)
}

// Receiver collects the spans exported to it.
type Receiver struct {
	// URL is the base URL for OTEL_EXPORTER_OTLP_ENDPOINT (any path is
	// accepted: POST /v1/traces is what exporters send there).
	URL string
	// GRPC is the host:port of the gRPC receiver (OTEL_EXPORTER_OTLP_ENDPOINT
	// http://GRPC with OTEL_EXPORTER_OTLP_PROTOCOL=grpc).
	GRPC string

	mu    sync.Mutex
	spans []Span
	paths []string // of the HTTP exports
}

// Start starts a receiver on 127.0.0.1 (HTTP and gRPC), stopped when the
// test ends.
func Start(t testing.TB) *Receiver {
	t.Helper()
	r := &Receiver{}
	hs := httptest.NewServer(http.HandlerFunc(r.serveHTTP))
	t.Cleanup(hs.Close)
	r.URL = hs.URL

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(gs, grpcService{r: r})
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	r.GRPC = ln.Addr().String()
	return r
}

// Spans is every span received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.spans)
}

// Paths is the URL path of every HTTP export so far.
func (r *Receiver) Paths() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.paths)
}

// WaitFor waits until cond holds for the spans received (exporters send in
// batches, in the background), and returns them; it fails the test after a
// generous while.
func (r *Receiver) WaitFor(t testing.TB, what string, cond func([]Span) bool) []Span {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		spans := r.Spans()
		if cond(spans) {
			return spans
		}
		if time.Now().After(deadline) {
			t.Fatalf("never received %s; received:\n%s", what, Dump(spans))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Dump lists spans, one a line, for failure messages.
func Dump(spans []Span) string {
	var b strings.Builder
	for _, s := range spans {
		b.WriteString("  " + s.String() + "\n")
	}
	return b.String()
}

// Named returns the spans of service called name.
func Named(spans []Span, service, name string) []Span {
	var out []Span
	for _, s := range spans {
		if s.Service == service && s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

func (r *Receiver) serveHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = gz
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var export coltracepb.ExportTraceServiceRequest
	isJSON := strings.HasPrefix(req.Header.Get("Content-Type"), "application/json")
	if isJSON {
		err = protojson.Unmarshal(raw, &export)
	} else {
		err = proto.Unmarshal(raw, &export)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.add(&export, req.URL.Path)
	var out []byte
	if isJSON {
		w.Header().Set("Content-Type", "application/json")
		out, _ = protojson.Marshal(&coltracepb.ExportTraceServiceResponse{})
	} else {
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ = proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	}
	_, _ = w.Write(out)
}

type grpcService struct {
	coltracepb.UnimplementedTraceServiceServer
	r *Receiver
}

func (g grpcService) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	g.r.add(req, "")
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (r *Receiver) add(export *coltracepb.ExportTraceServiceRequest, path string) {
	var spans []Span
	for _, rs := range export.GetResourceSpans() {
		service := attrs(rs.GetResource().GetAttributes())["service.name"]
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				sp := Span{
					Service:      service,
					Scope:        ss.GetScope().GetName(),
					Name:         s.GetName(),
					Kind:         s.GetKind(),
					TraceID:      hex.EncodeToString(s.GetTraceId()),
					SpanID:       hex.EncodeToString(s.GetSpanId()),
					ParentSpanID: hex.EncodeToString(s.GetParentSpanId()),
					Attributes:   attrs(s.GetAttributes()),
					Error:        s.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR,
					Start:        time.Unix(0, int64(s.GetStartTimeUnixNano())),
					End:          time.Unix(0, int64(s.GetEndTimeUnixNano())),
				}
				for _, l := range s.GetLinks() {
					sp.Links = append(sp.Links, Link{hex.EncodeToString(l.GetTraceId()), hex.EncodeToString(l.GetSpanId())})
				}
				spans = append(spans, sp)
			}
		}
	}
	sort.SliceStable(spans, func(i, j int) bool { return spans[i].Start.Before(spans[j].Start) })
	r.mu.Lock()
	defer r.mu.Unlock()
	r.spans = append(r.spans, spans...)
	if path != "" {
		r.paths = append(r.paths, path)
	}
}

// attrs flattens attributes to strings (numbers and booleans as written).
func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		v := kv.GetValue()
		switch x := v.GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.GetKey()] = x.StringValue
		case *commonpb.AnyValue_BoolValue:
			m[kv.GetKey()] = fmt.Sprint(x.BoolValue)
		case *commonpb.AnyValue_IntValue:
			m[kv.GetKey()] = fmt.Sprint(x.IntValue)
		case *commonpb.AnyValue_DoubleValue:
			m[kv.GetKey()] = fmt.Sprint(x.DoubleValue)
		default:
			m[kv.GetKey()] = v.String()
		}
	}
	return m
}
