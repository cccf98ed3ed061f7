//go:build e2e

package e2e

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/authgear/authgear-forwardauth/resolver"
	"github.com/authgear/authgear-forwardauth/resolver/resolvertest"
)

// Versions .ci/gateways.sh builds (its cache holds <name>-<version>).
const (
	traefikVersion = "v3.6.12"
	caddyVersion   = "v2.11.9"
)

// The public host of the protected application in every shipped config, and
// the login page the service redirects browsers to.
const (
	appHost  = "app.example.com"
	loginURL = "https://project.example/login"
)

// required reports whether a missing dependency fails instead of skipping.
func required() bool { return os.Getenv("FORWARDAUTH_E2E") == "required" }

// missing skips, or fails when FORWARDAUTH_E2E=required.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if required() {
		t.Fatalf("%s (FORWARDAUTH_E2E=required; run .ci/gateways.sh)", msg)
	}
	t.Skipf("%s: run .ci/gateways.sh, or set FORWARDAUTH_E2E=required to make this a failure", msg)
}

func gatewayCache() string {
	if d := os.Getenv("FORWARDAUTH_GATEWAY_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cache", "forwardauth-gateways")
}

// findBinary looks for a program: $envVar, then the gateway cache's
// cacheName (when not empty), then PATH, then extra well-known paths.
func findBinary(t *testing.T, envVar, cacheName, name string, extra ...string) string {
	t.Helper()
	var tried []string
	if p := os.Getenv(envVar); p != "" {
		if isExecutable(p) {
			return p
		}
		tried = append(tried, "$"+envVar+"="+p)
	}
	if cacheName != "" {
		if c := gatewayCache(); c != "" {
			p := filepath.Join(c, cacheName)
			if isExecutable(p) {
				return p
			}
			tried = append(tried, p)
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	tried = append(tried, name+" in PATH")
	for _, p := range extra {
		if isExecutable(p) {
			return p
		}
		tried = append(tried, p)
	}
	missing(t, "%s not found (tried %s)", name, strings.Join(tried, ", "))
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// lockedBuffer collects a process's output.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// process is a started program, stopped by the test's cleanup.
type process struct {
	name   string
	cmd    *exec.Cmd
	output *lockedBuffer
	done   chan struct{}
	err    error
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// startProcess starts cmd in its own process group; cleanup stops the whole
// group (SIGTERM, then SIGKILL) and, when the test failed, logs its output.
func startProcess(t *testing.T, name string, cmd *exec.Cmd) *process {
	t.Helper()
	p := &process{name: name, cmd: cmd, output: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout = p.output
	cmd.Stderr = p.output
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(5 * time.Second):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-p.done
			}
		}
		if t.Failed() {
			out := p.output.String()
			if len(out) > 8000 {
				out = "...\n" + out[len(out)-8000:]
			}
			t.Logf("--- %s output ---\n%s", name, out)
		}
	})
	return p
}

// waitFor polls ready until it returns nil, the process exits, or timeout.
func waitFor(t *testing.T, p *process, timeout time.Duration, ready func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if p.exited() {
			t.Fatalf("%s exited while starting (%v):\n%s", p.name, p.err, p.output.String())
		}
		if err = ready(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready after %s: %v\n%s", p.name, timeout, err, p.output.String())
}

func dialable(addr string) func() error {
	return func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// --- the upstream --------------------------------------------------------------

// echo is what the upstream answers: the request it received.
type echo struct {
	Method  string              `json:"method"`
	URI     string              `json:"uri"`
	Host    string              `json:"host"`
	Headers map[string][]string `json:"headers"`
	Body    string              `json:"body"`
}

// requestIDHeader tags each test request so the upstream can tell which ones
// reached it.
const requestIDHeader = "X-E2e-Request-Id"

type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen map[string]bool
}

// newUpstream echoes requests as JSON; with html, as a page for a browser
// (see browser_test.go).
func newUpstream(t *testing.T, html bool) *upstream {
	u := &upstream{seen: map[string]bool{}}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.seen[r.Header.Get(requestIDHeader)] = true
		u.mu.Unlock()
		e := echo{Method: r.Method, URI: r.RequestURI, Host: r.Host, Headers: r.Header, Body: string(body)}
		if html {
			writeEchoPage(w, e)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(e)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) reached(id string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.seen[id]
}

func (u *upstream) addr() string { return strings.TrimPrefix(u.URL, "http://") }

// --- the stack: Authgear double, Redis, the service, the upstream -------------

// The users of the fake Authgear and their Bearer tokens.
var (
	userAlice = resolver.Identity{
		UserID: "alice-0001", Verified: true, CanReauthenticate: true,
		Roles: []string{"editor", "viewer"}, AMR: []string{"pwd", "otp"}, AuthenticatedAt: 1700000000,
	}
	userAdmin = resolver.Identity{UserID: "admin-0001", Verified: true, Roles: []string{"admin"}, AMR: []string{"pwd"}, AuthenticatedAt: 1700000100}
	userAnon  = resolver.Identity{UserID: "anon-0001", Anonymous: true}
)

// The credentials, in the shapes Authgear issues (32 letters and digits; an
// IdP session is <uuid>.<32 letters and digits>).
var (
	tokenAlice   = resolvertest.Token("tokenAlice")
	tokenAdmin   = resolvertest.Token("tokenAdmin")
	tokenAnon    = resolvertest.Token("tokenAnon")
	tokenUnknown = resolvertest.Token("notAValidToken") // well shaped, unknown to Authgear
	sessionAlice = resolvertest.SessionToken("sessionCookieAlice")
)

type stack struct {
	authgear *resolvertest.Server
	upstream *upstream
	service  string // host:port of the service
	env      []string
	// hosts are the application's public hosts the gateways serve (default:
	// appHost); gatewayPort, when not 0, is the port they listen on.
	hosts       []string
	gatewayPort int
}

// stackOptions vary the stack for one test (browser_test.go).
type stackOptions struct {
	// setup runs on the fake Authgear before the service starts; it returns
	// variables added to the service's environment (later ones win).
	setup        func(*resolvertest.Server) []string
	hosts        []string
	gatewayPort  int
	htmlUpstream bool
}

func newStack(t *testing.T) *stack { return newStackWith(t, stackOptions{}) }

func newStackWith(t *testing.T, opts stackOptions) *stack {
	t.Helper()
	redisBin := findBinary(t, "FORWARDAUTH_E2E_REDIS", "", "redis-server", "/usr/bin/redis-server")

	ag := resolvertest.NewServer("project.example")
	t.Cleanup(ag.Close)
	for _, u := range []resolver.Identity{userAlice, userAdmin, userAnon} {
		ag.AddUser(u)
	}
	ag.AddSession(resolvertest.Bearer, tokenAlice, userAlice.UserID)
	ag.AddSession(resolvertest.Bearer, tokenAdmin, userAdmin.UserID)
	ag.AddSession(resolvertest.Bearer, tokenAnon, userAnon.UserID)
	ag.AddSession(resolvertest.Session, sessionAlice, userAlice.UserID)

	redisAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	_, redisPort, _ := net.SplitHostPort(redisAddr)
	redisDir := t.TempDir()
	rp := startProcess(t, "redis-server", exec.Command(redisBin,
		"--port", redisPort, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", redisDir))
	waitFor(t, rp, 10*time.Second, dialable(redisAddr))

	up := newUpstream(t, opts.htmlUpstream)

	// Signed identity for the upstream, with a key set from genkey (one
	// file for every replica, as in a real deployment).
	keys, err := exec.Command(serviceBinary, "genkey").Output()
	if err != nil {
		t.Fatalf("forwardauth genkey: %v", err)
	}
	keysFile := filepath.Join(t.TempDir(), "assertion-jwks.json")
	writeFile(t, keysFile, string(keys))

	st := &stack{authgear: ag, upstream: up, hosts: opts.hosts, gatewayPort: opts.gatewayPort}
	st.env = []string{
		"AUTHGEAR_ENDPOINT=https://" + ag.PublicHost,
		"AUTHGEAR_RESOLVER_URL=" + ag.ResolverURL().String(),
		"REDIS_URL=redis://" + redisAddr + "/0",
		"CACHE_KEY_SECRET=e2e-cache-key-secret-0123456789abcdef",
		"TRUSTED_PROXIES=127.0.0.0/8,::1/128",
		"LOGIN_URL=" + loginURL,
		"LOGIN_RETURN_HOSTS=" + appHost,
		"ALLOW_PREFLIGHT=true",
		"ASSERTION_KEYS_FILE=" + keysFile,
	}
	if opts.setup != nil {
		st.env = append(st.env, opts.setup(ag)...)
	}
	st.service = st.startService(t)
	return st
}

// startService starts a replica of the service (sharing the stack's Redis)
// and returns its address once it is ready.
func (st *stack) startService(t *testing.T) string {
	t.Helper()
	svcAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(serviceBinary)
	cmd.Env = append(append(os.Environ(), st.env...), "LISTEN_ADDR="+svcAddr)
	sp := startProcess(t, "forwardauth "+svcAddr, cmd)
	waitFor(t, sp, 15*time.Second, func() error {
		resp, err := http.Get("http://" + svcAddr + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %s", resp.Status)
		}
		return nil
	})
	return svcAddr
}

// publicHosts are the application's hosts the gateways serve.
func (st *stack) publicHosts() []string {
	if len(st.hosts) > 0 {
		return st.hosts
	}
	return []string{appHost}
}

// port is the port a gateway listens on.
func (st *stack) port(t *testing.T) int {
	if st.gatewayPort != 0 {
		return st.gatewayPort
	}
	return freePort(t)
}

// --- templating the shipped files ---------------------------------------------

// template reads deploy/<rel> and applies the replacements, each of which
// must occur: a shipped file that stops matching fails the test instead of
// silently testing something else.
func template(t *testing.T, rel string, replacements ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy", rel))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i+1 < len(replacements); i += 2 {
		if !strings.Contains(s, replacements[i]) {
			t.Fatalf("deploy/%s no longer contains %q: update the e2e templating", rel, replacements[i])
		}
		s = strings.ReplaceAll(s, replacements[i], replacements[i+1])
	}
	return s
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// --- the client -----------------------------------------------------------------

var client = &http.Client{
	Timeout: 15 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
	Transport: &http.Transport{DisableKeepAlives: true},
}

var requestSeq struct {
	sync.Mutex
	n int
}

// result is a response through a gateway.
type result struct {
	id     string // the request's X-E2e-Request-Id
	status int
	header http.Header
	body   []byte
}

// do sends a request to the gateway at base with Host app.example.com;
// headers is name, value pairs.
func do(t *testing.T, base, method, uri string, body string, headers ...string) result {
	t.Helper()
	return doHost(t, base, appHost, method, uri, body, headers...)
}

// doHost is do with another Host.
func doHost(t *testing.T, base, host, method, uri string, body string, headers ...string) result {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	return send(t, base, request{host: host, method: method, uri: uri, body: rd, headers: headers})
}

// request is what send sends.
type request struct {
	client      *http.Client // nil: the shared client
	host        string       // the Host header; "": app.example.com
	method, uri string
	body        io.Reader
	// raw sends header names as spelled instead of canonicalizing them.
	raw     bool
	headers []string // name, value pairs
}

// send makes one request to the gateway at base, tagged with a fresh
// X-E2e-Request-Id.
func send(t *testing.T, base string, rq request) result {
	t.Helper()
	requestSeq.Lock()
	requestSeq.n++
	id := strconv.Itoa(requestSeq.n)
	requestSeq.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, rq.method, base+rq.uri, rq.body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = cmp.Or(rq.host, appHost)
	req.Header.Set(requestIDHeader, id)
	for i := 0; i+1 < len(rq.headers); i += 2 {
		if name := rq.headers[i]; rq.raw {
			req.Header[name] = append(req.Header[name], rq.headers[i+1])
		} else {
			req.Header.Add(name, rq.headers[i+1])
		}
	}
	resp, err := cmp.Or(rq.client, client).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", rq.method, rq.uri, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", rq.method, rq.uri, err)
	}
	return result{id: id, status: resp.StatusCode, header: resp.Header, body: b}
}

// echoed decodes what the upstream saw; it fails when the body is not an echo.
func (r result) echoed(t *testing.T) echo {
	t.Helper()
	var e echo
	if err := json.Unmarshal(r.body, &e); err != nil || e.Method == "" {
		t.Fatalf("response is not the upstream's echo (status %d): %s", r.status, r.body)
	}
	return e
}
