package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
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
		{map[string]string{"AUTHGEAR_ENDPOINT": "https://p.example", "REDIS_KEY_PREFIX": "{app}:"}, "REDIS_KEY_PREFIX"},
		{map[string]string{"AUTHGEAR_ENDPOINT": "https://p.example", "JWT_VERIFY": "yes"}, "JWT_VERIFY"},
		{map[string]string{"AUTHGEAR_ENDPOINT": "https://p.example", "CREDENTIAL_SHAPES": "none"}, "CREDENTIAL_SHAPES"},
		{map[string]string{"AUTHGEAR_ENDPOINT": "https://p.example", "RESOLVER_CLIENT_RATE": "-1"}, "RESOLVER_CLIENT_RATE"},
		{map[string]string{"AUTHGEAR_ENDPOINT": "https://p.example", "RESOLVER_CLIENT_RATE": "fast"}, "RESOLVER_CLIENT_RATE"},
		{map[string]string{"AUTHGEAR_ENDPOINT": "https://p.example", "RESOLVER_CLIENT_BURST": "0"}, "RESOLVER_CLIENT_BURST"},
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
	// Laid out like the Go tools: no line wider than a terminal's 80 columns
	// (a tab is 8), however long a default.
	for line := range strings.Lines(out.String()) {
		if w := columns(strings.TrimSuffix(line, "\n")); w > 80 {
			t.Errorf("-h line of %d columns: %q", w, line)
		}
	}
}

// columns is how wide s shows on a terminal with tab stops every 8.
func columns(s string) int {
	n := 0
	for _, r := range s {
		if r == '\t' {
			n += 8 - n%8
		} else {
			n++
		}
	}
	return n
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
	secretToken, anotherSecret := resolvertest.Token("secretTokenValue"), resolvertest.SessionToken("anotherSecret")
	ag.AddSession(resolvertest.Bearer, secretToken, "u1")

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
		req.Header.Set("Authorization", "Bearer "+secretToken)
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
		req.Header.Set("Cookie", "session="+anotherSecret)
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
	for _, secret := range []string{secretToken, anotherSecret} {
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

// startService runs the service with env (plus a free LISTEN_ADDR) until the
// test ends, and returns its base URL.
func startService(t *testing.T, kv map[string]string) string {
	t.Helper()
	addr := "127.0.0.1:" + freePort(t)
	full := map[string]string{"LISTEN_ADDR": addr}
	for k, v := range kv {
		full[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"forwardauth"}, env(full), io.Discard, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	waitReady(t, "http://"+addr+"/readyz")
	return "http://" + addr
}

func authStatus(t *testing.T, base, bearer string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/auth", nil)
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func signedWebhook(t *testing.T, base, secret, body string) int {
	t.Helper()
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	req, _ := http.NewRequest("POST", base+"/webhooks/authgear", strings.NewReader(body))
	req.Header.Set("x-authgear-body-signature", hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestWebhookPurgesEveryReplica: two service processes share one Redis; a
// user.disabled webhook sent to one makes the other ask Authgear again,
// although its own cache would otherwise keep the allow for an hour.
func TestWebhookPurgesEveryReplica(t *testing.T) {
	ag := resolvertest.NewServer("project.example")
	defer ag.Close()
	ag.AddUser(resolver.Identity{UserID: "u1"})
	tok1, tok2 := resolvertest.Token("tok1"), resolvertest.Token("tok2")
	ag.AddSession(resolvertest.Bearer, tok1, "u1")
	ag.AddUser(resolver.Identity{UserID: "u2"})
	ag.AddSession(resolvertest.Bearer, tok2, "u2")

	const secret = "webhook-secret"
	common := map[string]string{
		"AUTHGEAR_ENDPOINT":       "https://project.example",
		"AUTHGEAR_RESOLVER_URL":   ag.ResolverURL().String(),
		"REDIS_URL":               redistest.URL(t),
		"REDIS_KEY_PREFIX":        "replicas-" + freePort(t) + ":",
		"CACHE_KEY_SECRET":        strings.Repeat("k", 32),
		"CACHE_TTL":               "1h",
		"LOCAL_CACHE_TTL":         "1h",
		"AUTHGEAR_WEBHOOK_SECRET": secret,
		"ADMIN_TOKEN":             "admin-token-0123456789",
	}
	a, b := startService(t, common), startService(t, common)
	for _, base := range []string{a, b} {
		for _, tok := range []string{tok1, tok2} {
			if c := authStatus(t, base, tok); c != 200 {
				t.Fatalf("%s %s: status %d", base, tok, c)
			}
		}
	}
	if n := ag.Calls(); n != 2 {
		t.Fatalf("resolver calls = %d, want 2 (the second replica answers from Redis)", n)
	}

	ag.DisableUser("u1", true)
	body := `{"id":"e1","seq":1,"type":"user.disabled","payload":{"user":{"id":"u1","is_disabled":true}},"context":{"timestamp":1764000000}}`
	if c := signedWebhook(t, a, secret, body); c != 200 {
		t.Fatalf("webhook: status %d", c)
	}
	deadline := time.Now().Add(10 * time.Second)
	for authStatus(t, b, tok1) != 401 {
		if time.Now().After(deadline) {
			t.Fatal("the other replica still allows the disabled user")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if c := authStatus(t, a, tok1); c != 401 {
		t.Fatalf("the replica that took the webhook: status %d, want 401", c)
	}
	calls := ag.Calls()
	for _, base := range []string{a, b} {
		if c := authStatus(t, base, tok2); c != 200 {
			t.Fatalf("another user was affected: status %d", c)
		}
	}
	if ag.Calls() != calls {
		t.Fatal("another user's cached decision was purged")
	}

	// A bad signature purges nothing.
	ag.DisableUser("u2", true)
	bad := `{"type":"user.disabled","payload":{"user":{"id":"u2"}}}`
	if c := signedWebhook(t, a, "wrong-secret", bad); c != 401 {
		t.Fatalf("webhook with a wrong signature: status %d, want 401", c)
	}
	if c := authStatus(t, b, tok2); c != 200 {
		t.Fatalf("a badly signed webhook purged: status %d", c)
	}

	// The app signs tok2 out (no webhook exists for that) and purges it.
	ag.RevokeSession(resolvertest.Bearer, tok2)
	req, _ := http.NewRequest("POST", a+"/purge", strings.NewReader(`{"authorization":"Bearer `+tok2+`"}`))
	req.Header.Set("Authorization", "Bearer admin-token-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("purge: status %d", resp.StatusCode)
	}
	deadline = time.Now().Add(10 * time.Second)
	for authStatus(t, b, tok2) != 401 {
		if time.Now().After(deadline) {
			t.Fatal("the other replica still allows the purged credential")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWebhookAndPurgeAreOffUnlessConfigured(t *testing.T) {
	ag := resolvertest.NewServer("project.example")
	defer ag.Close()
	base := startService(t, map[string]string{"AUTHGEAR_ENDPOINT": "https://project.example", "AUTHGEAR_RESOLVER_URL": ag.ResolverURL().String()})
	for _, path := range []string{"/webhooks/authgear", "/purge"} {
		resp, err := http.Post(base+path, "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("POST %s without its secret: status %d, want 404", path, resp.StatusCode)
		}
	}
}

// TestJWTRevocationReachesEveryReplica: with local JWT verification, a
// user.disabled webhook sent to one replica blocks the user's tokens on the
// other, which never asks Authgear about them.
func TestJWTRevocationReachesEveryReplica(t *testing.T) {
	ag := resolvertest.NewServer("project.example")
	defer ag.Close()
	ag.AddUser(resolver.Identity{UserID: "u1"})
	ag.AddUser(resolver.Identity{UserID: "u2"})
	const secret = "webhook-secret"
	common := map[string]string{
		"AUTHGEAR_ENDPOINT":       "https://project.example",
		"AUTHGEAR_RESOLVER_URL":   ag.ResolverURL().String(),
		"REDIS_URL":               redistest.URL(t),
		"REDIS_KEY_PREFIX":        "jwt-replicas-" + freePort(t) + ":",
		"CACHE_KEY_SECRET":        strings.Repeat("k", 32),
		"AUTHGEAR_WEBHOOK_SECRET": secret,
		"JWT_VERIFY":              "true",
	}
	a, b := startService(t, common), startService(t, common)
	tok1 := ag.IssueJWT("u1", resolvertest.WithClaim("iat", time.Now().Add(-time.Minute).Unix()))
	tok2 := ag.IssueJWT("u2")
	for _, base := range []string{a, b} {
		waitLocalJWT(t, ag, base, tok2)
		if c := authStatus(t, base, tok1); c != 200 {
			t.Fatalf("status %d", c)
		}
	}

	ag.DisableUser("u1", true)
	body := `{"type":"user.disabled","payload":{"user":{"id":"u1"}}}`
	if c := signedWebhook(t, a, secret, body); c != 200 {
		t.Fatalf("webhook: status %d", c)
	}
	deadline := time.Now().Add(10 * time.Second)
	for authStatus(t, b, tok1) != 401 {
		if time.Now().After(deadline) {
			t.Fatal("the other replica still accepts the disabled user's JWT")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if c := authStatus(t, a, tok1); c != 401 {
		t.Fatalf("the replica that took the webhook: status %d", c)
	}
	if c := authStatus(t, b, tok2); c != 200 {
		t.Fatalf("another user's JWT: status %d", c)
	}
	// A replica started after the revocation learns it from Redis.
	c := startService(t, common)
	waitLocalJWT(t, ag, c, tok2)
	if s := authStatus(t, c, tok1); s != 401 {
		t.Fatalf("a replica started later accepts the disabled user's JWT: status %d", s)
	}
}

// waitLocalJWT waits until the service at base verifies tok locally: allowed
// without a resolver call (until then it asks Authgear, by design).
func waitLocalJWT(t *testing.T, ag *resolvertest.Server, base, tok string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		calls := ag.Calls()
		if authStatus(t, base, tok) == 200 && ag.Calls() == calls {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the service never verified the JWT locally")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOversizedHeaders: a request with 64 KiB of headers is answered (by the
// server's limit or on its merits), one far over the limit gets 431; neither
// is a 5xx, and the service goes on.
func TestOversizedHeaders(t *testing.T) {
	ag := resolvertest.NewServer("project.example")
	defer ag.Close()
	ag.AddUser(resolver.Identity{UserID: "u1"})
	s1 := resolvertest.SessionToken("s1")
	ag.AddSession(resolvertest.Session, s1, "u1")
	base := startService(t, map[string]string{"AUTHGEAR_ENDPOINT": "https://project.example", "AUTHGEAR_RESOLVER_URL": ag.ResolverURL().String()})
	for _, size := range []int{64 << 10, 256 << 10} {
		req, _ := http.NewRequest("GET", base+"/auth", nil)
		req.Header.Set("Cookie", "junk="+strings.Repeat("j", size)+"; session="+s1)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 || (size > 128<<10 && resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge) {
			t.Fatalf("%d bytes of headers: status %d", size, resp.StatusCode)
		}
	}
	if c := authStatus(t, base, resolvertest.Token("nope")); c != 401 {
		t.Fatalf("after oversized requests: status %d", c)
	}
}

// TestCredentialShapesMode: the mode is named in a start-up log line and
// applied: a credential of a shape Authgear never issues reaches Authgear
// only with CREDENTIAL_SHAPES=any.
func TestCredentialShapesMode(t *testing.T) {
	for _, tc := range []struct {
		mode, logged string
		calls        int64
	}{{"", `"credential_shapes":"authgear"`, 0}, {"any", `"credential_shapes":"any"`, 1}} {
		ag := resolvertest.NewServer("project.example")
		addr := "127.0.0.1:" + freePort(t)
		logs := &syncBuffer{}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, []string{"forwardauth"}, env(map[string]string{
				"AUTHGEAR_ENDPOINT": "https://project.example", "AUTHGEAR_RESOLVER_URL": ag.ResolverURL().String(),
				"LISTEN_ADDR": addr, "CREDENTIAL_SHAPES": tc.mode,
			}), logs, logs)
		}()
		waitReady(t, "http://"+addr+"/readyz")
		if c := authStatus(t, "http://"+addr, "not-an-authgear-token"); c != 401 {
			t.Errorf("mode %q: status %d, want 401", tc.mode, c)
		}
		if n := ag.Calls(); n != tc.calls {
			t.Errorf("mode %q: %d resolver calls, want %d", tc.mode, n, tc.calls)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		ag.Close()
		if !strings.Contains(logs.String(), tc.logged) || !strings.Contains(logs.String(), "CREDENTIAL_SHAPES=") {
			t.Errorf("mode %q: no start-up line naming it in %s", tc.mode, logs)
		}
	}
}
