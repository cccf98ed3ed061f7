package opscheck

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/authgear/authgear-forwardauth/cache/redistest"
	"github.com/authgear/authgear-forwardauth/resolver"
	"github.com/authgear/authgear-forwardauth/resolver/resolvertest"
)

const (
	webhookSecret = "webhook-secret-for-the-metrics-test"
	adminToken    = "admin-token-for-the-metrics-test"
)

// liveMetrics builds the service, runs it against the fake Authgear and a
// real redis-server, makes it answer every kind of request, and returns what
// its /metrics then exports.
func liveMetrics(t *testing.T) Exported {
	t.Helper()
	rs := redistest.Start(t) // skips, or fails under FORWARDAUTH_E2E=required, without redis-server
	bin := buildService(t)

	ag := resolvertest.NewServer("project.example")
	t.Cleanup(ag.Close)
	ag.AddUser(resolver.Identity{UserID: "alice", Roles: []string{"staff"}, Verified: true})
	ag.AddUser(resolver.Identity{UserID: "bob"})

	addr := freeAddr(t)
	svc := startService(t, bin, map[string]string{
		"AUTHGEAR_ENDPOINT":       "https://project.example",
		"AUTHGEAR_RESOLVER_URL":   ag.ResolverURL().String(),
		"LISTEN_ADDR":             addr,
		"REDIS_URL":               rs.URL(),
		"REDIS_KEY_PREFIX":        "metricstest:",
		"CACHE_KEY_SECRET":        strings.Repeat("k", 32),
		"CACHE_TTL":               "2s",
		"CACHE_NEGATIVE_TTL":      "1s",
		"LOCAL_CACHE_TTL":         "100ms",
		"STALE_IF_ERROR":          "1h",
		"RESOLVER_TIMEOUT":        "500ms",
		"RESOLVER_MAX_CONCURRENT": "1",
		"RESOLVER_BREAK_AFTER":    "25",
		"RESOLVER_BREAK_COOLDOWN": "1h",
		"ALLOW_PREFLIGHT":         "true",
		"JWT_VERIFY":              "hybrid",
		"AUTHGEAR_WEBHOOK_SECRET": webhookSecret,
		"ADMIN_TOKEN":             adminToken,
		"LOG_LEVEL":               "warn",
	})
	s := &session{t: t, base: "http://" + addr}
	s.waitReady(svc)

	// Every outcome of /auth while Authgear answers.
	token := func(name, user string) string {
		tok := resolvertest.Token(name) // the shape Authgear issues
		ag.AddSession(resolvertest.Bearer, tok, user)
		return tok
	}
	// fresh is a well-shaped token Authgear never issued: a miss each time.
	fresh := func(name string) string {
		return resolvertest.Token(name + strconv.FormatInt(time.Now().UnixNano(), 36))
	}
	alice := token("alice-token", "alice")
	s.auth("", 200, bearer(alice))            // allow, from Authgear
	s.auth("", 200, bearer(alice))            // allow, in-process hit
	s.auth("", 401, bearer(fresh("nobody")))  // deny
	s.auth("", 401, bearer("not-a-token"))    // misshapen: refused without asking
	s.auth("", 401, nil)                      // no credential
	s.auth("optional", 200, nil)              // optional, anonymous
	s.auth("roles=admin", 403, bearer(alice)) // forbidden
	s.auth("rolez=admin", 500, bearer(alice)) // policy error
	// Malformed: two Authorization headers.
	s.auth("", 401, http.Header{"Authorization": {"Bearer a", "Bearer b"}})
	// A CORS preflight, described by the gateway.
	s.auth("", 200, http.Header{"Origin": {"https://app.example"}, "Access-Control-Request-Method": {"GET"}, "X-Forwarded-Method": {"OPTIONS"}})

	// A Redis hit: once the in-process copy (LOCAL_CACHE_TTL) is gone.
	s.until("a Redis hit", func() bool {
		s.auth("", 200, bearer(alice))
		return s.value("forwardauth_cache_lookups_total", "tier", "redis", "result", "hit") > 0
	})

	// JWTs verified here (hybrid): valid, forged, revoked through /purge.
	s.auth("", 200, bearer(ag.IssueJWT("alice")))
	forged := ag.IssueJWT("alice", resolvertest.WithSignature("Zm9yZ2Vk"))
	s.until("a forged JWT refused locally (once the keys are fetched)", func() bool {
		s.auth("", 401, bearer(forged))
		return s.value("forwardauth_decisions_total", "outcome", "jwt_invalid") > 0
	})
	revoked := ag.IssueJWT("alice")
	s.post("/purge", 200, http.Header{"Authorization": {"Bearer " + adminToken}}, `{"authorization":"Bearer `+revoked+`"}`)
	s.auth("", 401, bearer(revoked))
	s.post("/purge", 200, http.Header{"Authorization": {"Bearer " + adminToken}}, `{"user_id":"bob"}`)

	// Webhook deliveries: good, wrongly signed, signed but malformed, too big.
	s.webhook(200, `{"type":"user.disabled","payload":{"user":{"id":"bob"}}}`, true)
	s.webhook(401, `{"type":"user.disabled","payload":{"user":{"id":"bob"}}}`, false)
	s.webhook(400, `{"type":""}`, true)
	s.webhook(413, strings.Repeat(" ", 1<<20+1), true)

	// A slow Authgear: with one slot, concurrent misses wait for it in vain.
	ag.SetFailure(resolvertest.Hang)
	s.until("a call refused for want of a slot", func() bool {
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				s.authAny(bearer(fresh("slow" + strconv.Itoa(i))))
			})
		}
		wg.Wait()
		return s.value("forwardauth_resolver_rejected_total", "reason", "no_slot") > 0
	})
	ag.SetFailure(resolvertest.OK)
	s.auth("", 401, bearer(fresh("resets"))) // an answer: consecutive failures start over

	// Authgear down: a cached allow is served stale, other requests get 503,
	// and after RESOLVER_BREAK_AFTER failures the circuit opens.
	staleUser := token("stale-token", "alice")
	s.auth("", 200, bearer(staleUser))
	ag.SetFailure(resolvertest.Status500)
	s.until("a stale allow served", func() bool {
		h := s.auth("", 200, bearer(staleUser))
		return h.Get("X-Forwardauth-Stale") == "true"
	})
	s.until("the circuit open", func() bool {
		s.auth("", 503, bearer(fresh("down")))
		return s.value("forwardauth_resolver_rejected_total", "reason", "circuit_open") > 0
	})

	// A client past its budget of resolver calls (RESOLVER_CLIENT_BURST, 100
	// by default; a client of its own, named by X-Forwarded-For from this
	// trusted peer): 429.
	s.until("a client over its budget", func() bool {
		for range 120 {
			s.authAny(http.Header{"Authorization": {"Bearer " + fresh("flood")}, "X-Forwarded-For": {"203.0.113.9"}})
		}
		return s.value("forwardauth_resolver_rejected_total", "reason", "client_rate") > 0
	})

	// Redis down: the tier fails, a webhook purge fails.
	rs.Stop()
	s.authAny(bearer(fresh("redisdown")))
	s.webhook(503, `{"type":"user.disabled","payload":{"user":{"id":"alice"}}}`, true)

	return s.scrape()
}

// buildService builds the service's main package (the repository root).
func buildService(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !bytes.HasPrefix(mod, []byte("module github.com/authgear/authgear-forwardauth\n")) {
		t.Fatalf("%s is not the service's module: %v", root, err)
	}
	bin := filepath.Join(t.TempDir(), "forwardauth")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build of the service: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// service is the running binary; its log is shown when the test fails.
type service struct {
	cmd  *exec.Cmd
	log  *bytes.Buffer
	done chan error
}

func startService(t *testing.T, bin string, env map[string]string) *service {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	log := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = &lockedWriter{w: log}, &lockedWriter{w: log}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the service: %v", err)
	}
	svc := &service{cmd: cmd, log: log, done: make(chan error, 1)}
	go func() { svc.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-svc.done
		if t.Failed() {
			t.Logf("service log:\n%s", tail(log.String(), 4000))
		}
	})
	return svc
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// session drives the service over HTTP, failing t on an unexpected answer.
type session struct {
	t    *testing.T
	base string
}

var client = &http.Client{Timeout: 10 * time.Second}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func (s *session) do(method, path string, h http.Header, body string) (*http.Response, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// auth asks /auth (with a policy query) and wants status.
func (s *session) auth(policy string, status int, h http.Header) http.Header {
	s.t.Helper()
	path := "/auth"
	if policy != "" {
		path += "?" + policy
	}
	resp, body := s.do("GET", path, h, "")
	if resp.StatusCode != status {
		s.t.Fatalf("GET %s: %d %q, want %d", path, resp.StatusCode, body, status)
	}
	return resp.Header
}

// authAny asks /auth and takes whatever it answers, errors included: it may
// run outside the test's goroutine.
func (s *session) authAny(h http.Header) {
	req, err := http.NewRequest("GET", s.base+"/auth", nil)
	if err != nil {
		return
	}
	req.Header = h
	if resp, err := client.Do(req); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func (s *session) post(path string, status int, h http.Header, body string) {
	s.t.Helper()
	resp, b := s.do("POST", path, h, body)
	if resp.StatusCode != status {
		s.t.Fatalf("POST %s: %d %q, want %d", path, resp.StatusCode, b, status)
	}
}

// webhook delivers body, signed with the right secret or a wrong one.
func (s *session) webhook(status int, body string, rightSecret bool) {
	s.t.Helper()
	key := webhookSecret
	if !rightSecret {
		key = "not-the-secret"
	}
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(body))
	s.post("/webhooks/authgear", status, http.Header{"X-Authgear-Body-Signature": {hex.EncodeToString(m.Sum(nil))}}, body)
}

// waitReady waits for /readyz (Redis answers, purges listened to).
func (s *session) waitReady(svc *service) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-svc.done:
			svc.done <- err
			s.t.Fatalf("the service exited: %v\n%s", err, tail(svc.log.String(), 4000))
		default:
		}
		if resp, err := client.Get(s.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the service never became ready\n%s", tail(svc.log.String(), 4000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// until repeats step until it reports true, for at most 30 s: for what
// depends on expiries and timeouts of the service, not on the test's clock.
func (s *session) until(what string, step func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !step() {
		if time.Now().After(deadline) {
			s.t.Fatalf("never happened: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scrape reads /metrics.
func (s *session) scrape() Exported {
	s.t.Helper()
	out := Exported{}
	for name, mf := range s.families() {
		f := &Family{Type: mf.GetType(), Labels: map[string]map[string]bool{}, Le: map[string]bool{}, Quantile: map[string]bool{}}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if f.Labels[lp.GetName()] == nil {
					f.Labels[lp.GetName()] = map[string]bool{}
				}
				f.Labels[lp.GetName()][lp.GetValue()] = true
			}
			for _, q := range m.GetSummary().GetQuantile() {
				f.Quantile[strconv.FormatFloat(q.GetQuantile(), 'g', -1, 64)] = true
			}
			for _, b := range m.GetHistogram().GetBucket() {
				f.Le[strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)] = true
			}
			if m.GetHistogram() != nil {
				f.Le["+Inf"] = true
			}
		}
		out[name] = f
	}
	return out
}

func (s *session) families() map[string]*dto.MetricFamily {
	s.t.Helper()
	resp, body := s.do("GET", "/metrics", nil, "")
	if resp.StatusCode != 200 {
		s.t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		s.t.Fatalf("parsing /metrics: %v", err)
	}
	return families
}

// value is the sum of the counters or gauges of name whose labels include
// the given name/value pairs.
func (s *session) value(name string, labelPairs ...string) float64 {
	s.t.Helper()
	mf := s.families()[name]
	var sum float64
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		match := true
		for i := 0; i+1 < len(labelPairs); i += 2 {
			if have[labelPairs[i]] != labelPairs[i+1] {
				match = false
			}
		}
		if match {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}
