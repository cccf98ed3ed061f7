package handler

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgear/authgear-forwardauth/cache"
	"github.com/authgear/authgear-forwardauth/cache/redistest"
	"github.com/authgear/authgear-forwardauth/resolver"
	"github.com/authgear/authgear-forwardauth/resolver/resolvertest"
	"github.com/redis/go-redis/v9"
)

// benchWriter is a ResponseWriter that reuses its header map, so that the
// benchmarks measure the handlers and not a recorder.
type benchWriter struct {
	h    http.Header
	code int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *benchWriter) WriteHeader(code int)        { w.code = code }

func (w *benchWriter) reset() {
	clear(w.h)
	w.code = 0
}

// bareHandler is the baseline: it only writes the same headers.
func bareHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Authgear-Session-Valid", "true")
		h.Set("X-Authgear-User-Id", alice.UserID)
		h.Set("X-Authgear-User-Anonymous", "false")
		h.Set("X-Authgear-User-Verified", "true")
		h.Set("X-Authgear-User-Can-Reauthenticate", "true")
		h.Set("X-Authgear-User-Roles", "admin,editor")
		h.Set("X-Authgear-Session-Amr", "pwd otp")
		h.Set("X-Authgear-Session-Authenticated-At", "1764000000")
		w.WriteHeader(http.StatusOK)
	})
}

func benchServe(b *testing.B, h http.Handler, r *http.Request) {
	w := &benchWriter{h: http.Header{}}
	h.ServeHTTP(w, r)
	if w.code != http.StatusOK {
		b.Fatalf("status %d", w.code)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &benchWriter{h: http.Header{}}
		for pb.Next() {
			w.reset()
			h.ServeHTTP(w, r)
		}
	})
}

func benchRequest() *http.Request {
	r := httptest.NewRequest("GET", "/auth", nil)
	r.Header.Set("Authorization", "Bearer "+aliceToken)
	r.Header.Set("Cookie", "theme=dark; _ga=GA1.2.3; csrf=abcdef")
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)")
	r.Header.Set("X-Forwarded-For", "203.0.113.7")
	return r
}

func BenchmarkBaselineBareHandler(b *testing.B) {
	benchServe(b, bareHandler(), benchRequest())
}

func BenchmarkAuthHitInProcess(b *testing.B) {
	s := newStack(b, stackOptions{})
	benchServe(b, s.handler, benchRequest())
}

// redisStack is the service with the in-process tier off (LOCAL_CACHE_TTL 0), so
// that every request is a Redis hit once warm.
func redisStack(b *testing.B, tokens int) (http.Handler, *resolvertest.Server) {
	srv := redistest.Start(b)
	ag := resolvertest.NewServer(publicHost)
	b.Cleanup(ag.Close)
	ag.AddUser(alice)
	for i := range tokens {
		ag.AddSession(resolvertest.Bearer, resolvertest.Token("tok"+strconv.Itoa(i)), alice.UserID)
	}
	reg := prometheus.NewRegistry()
	client := resolver.NewClient(resolver.ClientConfig{Endpoint: ag.Endpoint(), ResolverURL: ag.ResolverURL(), Timeout: 2 * time.Second},
		resolver.NewHTTPClient(2*time.Second), discard, reg)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: 64})
	b.Cleanup(func() { rc.Close() })
	tier := cache.NewRedis(rc, cache.RedisConfig{Prefix: "bench:", Timeout: time.Second, RetryAfter: time.Second, TombstoneTTL: 5 * time.Second, MaxTTL: time.Minute}, discard)
	b.Cleanup(tier.Close)
	c := cache.New(cache.Config{TTL: time.Minute, NegativeTTL: 5 * time.Second, FetchTimeout: 3 * time.Second},
		cache.NewKeyer([]byte("secret")), cache.NewLocal(1000, 0, nil), tier, client, discard, reg)
	return New(Config{}, Deps{Decider: c, Logger: discard, Registry: reg}), ag
}

func BenchmarkAuthHitRedis(b *testing.B) {
	h, ag := redisStack(b, 1)
	r := benchRequest()
	r.Header.Set("Authorization", "Bearer "+resolvertest.Token("tok0"))
	benchServe(b, h, r)
	if n := ag.Calls(); n != 1 {
		b.Fatalf("resolver calls = %d, want 1: not every request was a Redis hit", n)
	}
}

// BenchmarkAuthHitRedisManyTokens: 64 clients at once over 1,000 warm
// tokens, each request a Redis hit of its own (little to coalesce).
func BenchmarkAuthHitRedisManyTokens(b *testing.B) {
	const tokens = 1000
	h, ag := redisStack(b, tokens)
	reqs := make([]*http.Request, tokens)
	for i := range reqs {
		reqs[i] = benchRequest()
		reqs[i].Header.Set("Authorization", "Bearer "+resolvertest.Token("tok"+strconv.Itoa(i)))
		w := &benchWriter{h: http.Header{}}
		h.ServeHTTP(w, reqs[i])
	}
	var next atomic.Int64
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &benchWriter{h: http.Header{}}
		for pb.Next() {
			w.reset()
			h.ServeHTTP(w, reqs[next.Add(1)%tokens])
			if w.code != 200 {
				b.Fatalf("status %d", w.code)
			}
		}
	})
	b.StopTimer()
	if n := ag.Calls(); n != tokens {
		b.Fatalf("resolver calls = %d, want %d", n, tokens)
	}
}

// BenchmarkKey is the keyed hash alone, the largest cost of a hit.
func BenchmarkKey(b *testing.B) {
	k := cache.NewKeyer([]byte("secret"))
	cr := resolver.Credentials{Bearer: "eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl"}
	b.ReportAllocs()
	for b.Loop() {
		_ = k.Key(cr)
	}
}

// BenchmarkAuthJWTLocal is a JWT access token verified here (JWT_VERIFY=true)
// and then held in the in-process cache: no resolver call, ever.
func BenchmarkAuthJWTLocal(b *testing.B) {
	s := newStack(b, stackOptions{jwt: JWTLocal})
	r := benchRequest()
	r.Header.Set("Authorization", "Bearer "+s.authgear.IssueJWT(alice.UserID))
	benchServe(b, s.handler, r)
	if n := s.authgear.Calls(); n != 0 {
		b.Fatalf("resolver calls = %d, want 0", n)
	}
}

// BenchmarkJWTVerify is one full local verification (RS256 signature and
// claims), what a JWT costs when it is not cached yet.
func BenchmarkJWTVerify(b *testing.B) {
	ag := resolvertest.NewServer(publicHost)
	b.Cleanup(ag.Close)
	ag.AddUser(alice)
	v, err := resolver.NewJWTVerifier(b.Context(), resolver.JWTConfig{Endpoint: ag.Endpoint(), DiscoveryURL: ag.DiscoveryURL()},
		resolver.NewHTTPClient(2*time.Second), discard)
	if err != nil {
		b.Fatal(err)
	}
	tok := ag.IssueJWT(alice.UserID)
	for !v.Ready() {
		time.Sleep(time.Millisecond)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(context.Background(), tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestCacheHitDoesNotAllocate guards the hot path: an in-process hit, plain
// or a locally verified JWT, allocates nothing.
func TestCacheHitDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts mean nothing under the race detector")
	}
	for _, tc := range []struct {
		name string
		opts stackOptions
		tok  func(s *stack) string
	}{
		{"resolver", stackOptions{}, func(*stack) string { return aliceToken }},
		{"jwt", stackOptions{jwt: JWTLocal}, func(s *stack) string { return s.authgear.IssueJWT(alice.UserID) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStack(t, tc.opts)
			r := benchRequest()
			r.Header.Set("Authorization", "Bearer "+tc.tok(s))
			w := &benchWriter{h: http.Header{}}
			s.handler.ServeHTTP(w, r)
			if w.code != 200 {
				t.Fatalf("status %d", w.code)
			}
			if n := testing.AllocsPerRun(200, func() {
				w.reset()
				s.handler.ServeHTTP(w, r)
			}); n != 0 {
				t.Fatalf("%v allocations per hit, want 0", n)
			}
		})
	}
}

// BenchmarkShapes is the shape check alone: an opaque token, and a 1 KB JWT
// whose header segment is known (the JWT_VERIFY=off path; with true, a hit
// is found before any shape check).
func BenchmarkShapes(b *testing.B) {
	ag := resolvertest.NewServer(publicHost)
	b.Cleanup(ag.Close)
	ag.AddUser(alice)
	jwt := ag.IssueJWT(alice.UserID)
	var sh resolver.Shapes
	for _, tc := range []struct{ name, tok string }{{"opaque", aliceToken}, {"jwt", jwt}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !sh.AccessToken(tc.tok) {
					b.Fatal("refused")
				}
			}
		})
	}
}
