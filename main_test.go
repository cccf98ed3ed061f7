package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgear/authgear-forwardauth/cache/redistest"
	"github.com/authgear/authgear-forwardauth/resolver"
	"github.com/authgear/authgear-forwardauth/resolver/resolvertest"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

// syncBuffer collects logs written from the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	secret := strings.Repeat("s", 32)
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, "AUTHGEAR_ENDPOINT is required"},
		{map[string]string{"AUTHGEAR_ENDPOINT": "myproject.authgear.cloud"}, "AUTHGEAR_ENDPOINT"},
		{map[string]string{"AUTHGEAR_ENDPOINT": "https://p.example/path"}, "AUTHGEAR_ENDPOINT"},
		{map[string]string{"AUTHGEAR_ENDPOINT": "https://p.example", "CACHE_TTL": "sixty"}, "CACHE_TTL"},
		{map[string]string{"AUTHGEAR_ENDPOINT": "https://p.example", "CACHE_NEGATIVE_TTL": "-1s"}, "CACHE_NEGATIVE_TTL"},
		{map[string]string{"AUTHGEAR_ENDPOINT": "https://p.example", "LOCAL_CACHE_SIZE": "lots"}, "LOCAL_CACHE_SIZE"},
		{map[string]string{"AUTHGEAR_ENDPOINT": "https://p.example", "AUTHGEAR_RESOLVER_URL": "/relative"}, "AUTHGEAR_RESOLVER_URL"},
		{map[string]string{"AUTHGEAR_ENDPOINT": "https://p.example", "REDIS_URL": "redis://127.0.0.1:6379"}, "CACHE_KEY_SECRET is required"},
		{map[string]string{"AUTHGEAR_ENDPOINT": "https://p.example", "CACHE_KEY_SECRET": "short"}, "CACHE_KEY_SECRET"},
		{map[string]string{"AUTHGEAR_ENDPOINT": "https://p.example", "REDIS_URL": "mysql://x", "CACHE_KEY_SECRET": secret}, "REDIS_URL"},
		{map[string]string{"AUTHGEAR_ENDPOINT": "https://p.example", "REDIS_MODE": "multi"}, "REDIS_MODE"},
		{map[string]string{"AUTHGEAR_ENDPOINT": "https://p.example", "LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		{map[string]string{"AUTHGEAR_ENDPOINT": "https://p.example", "LISTEN_ADDR": "nowhere"}, "LISTEN_ADDR"},
		{map[string]string{"AUTHGEAR_ENDPOINT": "https://p.example", "TRUSTED_PROXIES": "10.0.0.0/33"}, "TRUSTED_PROXIES"},
		{map[string]string{"AUTHGEAR_ENDPOINT": "https://p.example", "ALLOW_PREFLIGHT": "maybe"}, "ALLOW_PREFLIGHT"},
		{map[string]string{"AUTHGEAR_ENDPOINT": "https://p.example", "LOGIN_URL": "/login", "LOGIN_RETURN_HOSTS": "a.example"}, "LOGIN_URL"},
		{map[string]string{"AUTHGEAR_ENDPOINT": "https://p.example", "LOGIN_URL": "https://a.example/login"}, "LOGIN_RETURN_HOSTS is required"},
	}
	for _, tt := range tests {
		err := run(context.Background(), []string{"forwardauth"}, env(tt.env), &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("env %v: error %q, want one line naming %s", tt.env, err, tt.want)
		}
	}
}

func TestHelpListsEveryVariable(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"forwardauth", "-h"}, env(nil), &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"AUTHGEAR_ENDPOINT", "AUTHGEAR_RESOLVER_URL", "AUTHGEAR_COOKIE_PREFIX", "LISTEN_ADDR",
		"REDIS_URL", "CACHE_KEY_SECRET", "CACHE_TTL", "CACHE_NEGATIVE_TTL", "RESOLVER_TIMEOUT", "default 60s"} {
		if !strings.Contains(out.String(), v) {
			t.Errorf("-h does not mention %s", v)
		}
	}
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// TestServeWithRedisAndDrainOnShutdown runs the service as a user would:
// a request through it is answered from Authgear, then from the cache; on
// shutdown a request in flight still gets its answer; no credential is logged.
func TestServeWithRedisAndDrainOnShutdown(t *testing.T) {
	ag := resolvertest.NewServer("project.example")
	defer ag.Close()
	ag.AddUser(resolver.Identity{UserID: "u1"})
	ag.AddSession(resolvertest.Bearer, "secret-token-value", "u1")

	addr := "127.0.0.1:" + freePort(t)
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"forwardauth"}, env(map[string]string{
			"AUTHGEAR_ENDPOINT":     "https://project.example",
			"AUTHGEAR_RESOLVER_URL": ag.ResolverURL().String(),
			"LISTEN_ADDR":           addr,
			"REDIS_URL":             redistest.URL(t),
			"REDIS_KEY_PREFIX":      "main-test-" + freePort(t) + ":",
			"CACHE_KEY_SECRET":      strings.Repeat("k", 32),
		}), logs, logs)
	}()
	waitReady(t, "http://"+addr+"/readyz")
	if err := run(ctx, []string{"forwardauth", "healthcheck"}, env(map[string]string{"LISTEN_ADDR": addr}), logs, logs); err != nil {
		t.Fatalf("healthcheck: %v", err)
	}

	get := func() int {
		req, _ := http.NewRequest("GET", "http://"+addr+"/auth", nil)
		req.Header.Set("Authorization", "Bearer secret-token-value")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := get(); c != 200 {
		t.Fatalf("status %d", c)
	}
	if c := get(); c != 200 || ag.Calls() != 1 {
		t.Fatalf("second request: status %d after %d resolver calls, want 200 after 1", c, ag.Calls())
	}

	// A slow answer in flight when shutdown starts is still delivered.
	entered, release := make(chan struct{}), make(chan struct{})
	ag.Override(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		w.Header().Set("X-Authgear-Session-Valid", "true")
		w.Header().Set("X-Authgear-User-Id", "u2")
	}))
	status := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("GET", "http://"+addr+"/auth", nil)
		req.Header.Set("Cookie", "session=another-secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			status <- 0
			return
		}
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	<-entered
	cancel()
	time.Sleep(50 * time.Millisecond) // let Shutdown close the listener; the request is still in flight
	close(release)
	if c := <-status; c != 200 {
		t.Fatalf("request in flight at shutdown got %d, want 200", c)
	}
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, secret := range []string{"secret-token-value", "another-secret"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("a credential was logged: %s", logs.String())
		}
	}
	if !strings.Contains(logs.String(), `"msg":"resolver call"`) {
		t.Errorf("no log line for the resolver call: %s", logs.String())
	}
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never became ready", url)
}
