//go:build e2e

package e2e

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// The HAProxy recipe's own behaviour, beyond the contract every gateway
// passes: the shipped files run against a stand-in for the service whose
// answer each request chooses (stubAnswerHeader), so that what the script
// does with any answer can be checked, and a recording application.

const stubAnswerHeader = "X-E2e-Stub-Answer"

// recorded is one request a recorder received.
type recorded struct {
	method, uri string
	length      int64 // Content-Length, -1 when unknown
	header      http.Header
	trailer     http.Header
	body        string
}

// recorder is an HTTP server that records every request by its
// X-E2e-Request-Id (and counts the connections it accepted) before answer
// handles it.
type recorder struct {
	*httptest.Server
	mu    sync.Mutex
	reqs  map[string][]recorded
	conns int
}

func newRecorder(t *testing.T, answer http.HandlerFunc) *recorder {
	rec := &recorder{reqs: map[string][]recorded{}}
	rec.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		id := r.Header.Get(requestIDHeader)
		rec.reqs[id] = append(rec.reqs[id], recorded{method: r.Method, uri: r.RequestURI, length: r.ContentLength, header: r.Header.Clone(), trailer: r.Trailer.Clone(), body: string(body)})
		rec.mu.Unlock()
		answer(w, r)
	}))
	rec.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			rec.mu.Lock()
			rec.conns++
			rec.mu.Unlock()
		}
	}
	rec.Start()
	t.Cleanup(rec.Close)
	return rec
}

func (rec *recorder) got(id string) []recorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.reqs[id]
}

func (rec *recorder) connections() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.conns
}

func (rec *recorder) addr() string { return strings.TrimPrefix(rec.URL, "http://") }

// stubService stands in for authgear-forwardauth: /auth answers what the
// request's X-E2e-Stub-Answer names (the script passes client headers on),
// by default 200 with one identity header, and 401 for waitRouted; any other
// path is one of the service's own routes.
func stubService(t *testing.T) *recorder {
	return newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if !strings.HasPrefix(r.URL.Path, "/auth") {
			_, _ = io.WriteString(w, "the service's own route")
			return
		}
		switch r.Header.Get(stubAnswerHeader) {
		case "":
			if strings.HasPrefix(r.Header.Get("X-Forwarded-Uri"), "/__e2e_ready") {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			h.Set("X-Authgear-User-Id", "stub-user")
		case "allow-more":
			h.Set("X-Authgear-User-Id", "stub-user")
			h.Set("X-Authgear-Jwt-Assertion", "eyJhbGciOiJFUzI1NiJ9.e30.sig")
			h.Set("X-Authgear-Some-Future-Header", "future")
			h["X-Authgear-User-Roles"] = []string{""}
			h.Set("X-Not-Identity", "not copied")
		case "redirect":
			h.Set("Location", "https://project.example/login?return_to=x")
			h.Add("Set-Cookie", "state=abc; Path=/; HttpOnly")
			h.Add("Set-Cookie", "other=1; Path=/")
			w.WriteHeader(http.StatusFound)
			_, _ = io.WriteString(w, "to the sign-in page")
		case "401":
			h.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
		case "403":
			w.WriteHeader(http.StatusForbidden)
		case "503":
			http.Error(w, "authentication service unavailable", http.StatusServiceUnavailable)
		case "hang":
			<-r.Context().Done()
		}
	})
}

// appRecorder stands in for the application: 200 "the application", or for
// a WebSocket upgrade a 101, then "echo:" and the first bytes it reads.
func appRecorder(t *testing.T) *recorder {
	return newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			_, _ = io.WriteString(w, "the application")
			return
		}
		conn, rw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n")
		_ = rw.Flush()
		buf := make([]byte, 64)
		n, _ := rw.Read(buf)
		_, _ = conn.Write(append([]byte("echo:"), buf[:n]...))
	})
}

// haproxyRequest sends a request through HAProxy with Host app.example.com
// and a fresh X-E2e-Request-Id; headers are set as spelled (no
// canonicalization), name then value.
func haproxyRequest(t *testing.T, c *http.Client, base, method, uri string, body io.Reader, headers ...string) result {
	t.Helper()
	return send(t, base, request{client: c, method: method, uri: uri, body: body, raw: true, headers: headers})
}

// rawStatus writes request (a whole HTTP/1.1 request head, with
// "\r\n" line ends) to HAProxy and returns the answer's status.
func rawStatus(t *testing.T, base, request string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%q: %v", request, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// forgedIdentity: spellings of identity headers a client may send, which
// CGI-style or case-insensitive frameworks read as X-Authgear-*.
var forgedIdentity = []string{
	"X-Authgear-User-Id", "admin",
	"X-Authgear-User-Id", "admin-again",
	"x-authgear-user-roles", "admin",
	"X_Authgear_User_Id", "admin",
	"x.authgear.user.id", "admin",
	"XAUTHGEAR-USER-ROLES", "admin",
	"X-AuthGear-Jwt-Assertion", "forged",
	"X-Auth-Gear-Session-Valid", "true",
	"X__Authgear__Session_Valid", "true",
	"-X-Authgear-User-Verified", "true",
}

// identityName is the service's rule for an identity header's name.
func identityName(name string) bool {
	var b strings.Builder
	for _, c := range strings.ToLower(name) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		}
	}
	return strings.HasPrefix(b.String(), "xauthgear")
}

// identityHeaders returns the identity headers in h, name: values.
func identityHeaders(h http.Header) map[string][]string {
	out := map[string][]string{}
	for name, values := range h {
		if identityName(name) {
			out[name] = values
		}
	}
	return out
}

// TestHAProxy checks what deploy/haproxy does with each kind of answer and
// request, against the stand-in service.
func TestHAProxy(t *testing.T) {
	svc := stubService(t)
	app := appRecorder(t)
	base := startHAProxyWith(t, svc.addr(), app.addr())
	c := &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	get := func(t *testing.T, uri string, headers ...string) result {
		t.Helper()
		r := haproxyRequest(t, c, base, "GET", uri, nil, headers...)
		return r
	}
	onlyAtService := func(t *testing.T, r result) {
		t.Helper()
		if len(svc.got(r.id)) == 0 {
			t.Errorf("the service was not asked")
		}
		if len(app.got(r.id)) != 0 {
			t.Errorf("the application was reached")
		}
	}
	nowhere := func(t *testing.T, r result) {
		t.Helper()
		if n := len(svc.got(r.id)); n != 0 {
			t.Errorf("the service was reached")
		}
		if len(app.got(r.id)) != 0 {
			t.Errorf("the application was reached")
		}
	}
	atApp := func(t *testing.T, r result) recorded {
		t.Helper()
		if r.status != http.StatusOK || string(r.body) != "the application" {
			t.Fatalf("status %d, body %q; want the application's 200", r.status, r.body)
		}
		got := app.got(r.id)
		if len(got) != 1 {
			t.Fatalf("the application got %d requests, want 1", len(got))
		}
		return got[0]
	}

	t.Run("allow: every X-Authgear-* the service answers reaches the application, empty ones and others do not", func(t *testing.T) {
		e := atApp(t, get(t, "/hello", stubAnswerHeader, "allow-more"))
		want := map[string][]string{
			"X-Authgear-User-Id":            {"stub-user"},
			"X-Authgear-Jwt-Assertion":      {"eyJhbGciOiJFUzI1NiJ9.e30.sig"},
			"X-Authgear-Some-Future-Header": {"future"},
		}
		if got := identityHeaders(e.header); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("application saw identity headers %v, want %v", got, want)
		}
		if v := e.header.Get("X-Not-Identity"); v != "" {
			t.Errorf("application saw X-Not-Identity %q", v)
		}
	})

	for _, tc := range []struct{ name, uri, answer string }{
		{"allowed", "/hello", ""},
		{"optional route", "/public/page", ""},
		{"denied", "/hello", "401"},
		{"forbidden", "/admin/x", "403"},
	} {
		t.Run("every client spelling of an identity header is removed before the service and the application: "+tc.name, func(t *testing.T) {
			r := get(t, tc.uri, append([]string{stubAnswerHeader, tc.answer}, forgedIdentity...)...)
			for _, s := range svc.got(r.id) {
				if got := identityHeaders(s.header); len(got) != 0 {
					t.Errorf("the service saw %v", got)
				}
			}
			for _, a := range app.got(r.id) {
				if got := identityHeaders(a.header); fmt.Sprint(got) != fmt.Sprint(map[string][]string{"X-Authgear-User-Id": {"stub-user"}}) {
					t.Errorf("the application saw %v, want only the service's X-Authgear-User-Id", got)
				}
			}
			if tc.answer == "" {
				atApp(t, r)
			} else {
				onlyAtService(t, r)
			}
		})
	}

	t.Run("what the service is told: the original request, never the client's description of it", func(t *testing.T) {
		r := get(t, "/some/path?q=1&r=a%20b", "Authorization", "Bearer tok", "Cookie", "session=s",
			"Accept", "text/html", "X-Original-URL", "http://evil.example/x", "X-Original-Method", "OPTIONS",
			"X-Forwarded-Host", "evil.example", "X-Forwarded-Uri", "/evil", "X-Forwarded-Method", "OPTIONS",
			"X-Forwarded-Proto", "https", "X-Forwarded-For", "203.0.113.9")
		atApp(t, r)
		calls := svc.got(r.id)
		if len(calls) != 1 {
			t.Fatalf("the service got %d calls, want 1", len(calls))
		}
		s := calls[0]
		want := map[string]string{
			"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/some/path?q=1&r=a%20b", "X-Forwarded-Host": appHost,
			"X-Forwarded-Proto": "http", "X-Forwarded-For": "127.0.0.1",
			"Authorization": "Bearer tok", "Cookie": "session=s", "Accept": "text/html",
		}
		for name, v := range want {
			if got := s.header.Values(name); len(got) != 1 || got[0] != v {
				t.Errorf("the service saw %s %q, want [%q]", name, got, v)
			}
		}
		for name := range s.header {
			if strings.HasPrefix(name, "X-Original-") {
				t.Errorf("the service saw %s", name)
			}
		}
		if s.method != "GET" || s.uri != "/auth" || s.body != "" {
			t.Errorf("the service got %s %s with body %q, want GET /auth without one", s.method, s.uri, s.body)
		}

		// A body: the call has none, and says how long the original's is.
		r = haproxyRequest(t, c, base, "POST", "/form", strings.NewReader("a=1"),
			"Content-Type", "application/x-www-form-urlencoded", "X-Original-Content-Length", "0")
		if e := atApp(t, r); e.body != "a=1" {
			t.Errorf("the application got body %q", e.body)
		}
		calls = svc.got(r.id)
		if len(calls) != 1 {
			t.Fatalf("the service got %d calls, want 1", len(calls))
		}
		s = calls[0]
		if s.method != "GET" || s.body != "" || s.length > 0 || s.header.Get("X-Forwarded-Method") != "POST" ||
			fmt.Sprint(s.header.Values("X-Original-Content-Length")) != "[3]" || s.header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			t.Errorf("the service got %s, length %d, body %q, X-Forwarded-Method %q, X-Original-Content-Length %q, Content-Type %q",
				s.method, s.length, s.body, s.header.Get("X-Forwarded-Method"), s.header.Values("X-Original-Content-Length"), s.header.Get("Content-Type"))
		}
	})

	t.Run("refusals reach the client as the service sent them, never the application", func(t *testing.T) {
		r := get(t, "/page", stubAnswerHeader, "redirect")
		onlyAtService(t, r)
		if r.status != http.StatusFound || r.header.Get("Location") != "https://project.example/login?return_to=x" ||
			fmt.Sprint(r.header.Values("Set-Cookie")) != "[state=abc; Path=/; HttpOnly other=1; Path=/]" || string(r.body) != "to the sign-in page" {
			t.Errorf("got %d, Location %q, Set-Cookie %q, body %q", r.status, r.header.Get("Location"), r.header.Values("Set-Cookie"), r.body)
		}
		r = get(t, "/page", stubAnswerHeader, "401")
		onlyAtService(t, r)
		if r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
			t.Errorf("got %d, WWW-Authenticate %q", r.status, r.header.Get("WWW-Authenticate"))
		}
		r = get(t, "/page", stubAnswerHeader, "403")
		onlyAtService(t, r)
		if r.status != http.StatusForbidden {
			t.Errorf("got %d, want 403", r.status)
		}
		r = get(t, "/page", stubAnswerHeader, "503")
		onlyAtService(t, r)
		if r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "authentication service unavailable") {
			t.Errorf("got %d %q, want the service's 503", r.status, r.body)
		}
	})

	t.Run("a protected prefix is matched whatever its case; the optional one only exactly", func(t *testing.T) {
		for uri, query := range map[string]string{
			"/admin/x": "roles=admin", "/ADMIN/x": "roles=admin", "/aDmIn": "roles=admin",
			"/public/x": "optional", "/PUBLIC/x": "", "/Public": "", "/other": "",
		} {
			r := get(t, uri)
			atApp(t, r)
			calls := svc.got(r.id)
			if len(calls) != 1 || calls[0].uri != strings.TrimSuffix("/auth?"+query, "?") {
				t.Errorf("%s: the service got %v, want one call to /auth?%s", uri, calls, query)
			}
		}
	})

	t.Run("ambiguous paths are refused with 400 before the service and the application", func(t *testing.T) {
		for i, target := range []string{
			"/admin%2Fpanel", "/admin%2fpanel", "/%61dmin", "/%41DMIN", "/x/../admin", "/x/..", "/x/..?a", "/./admin",
			"//admin", "/admin;x=1", `/admin\x`, "/%2e%2e/admin", "/x%00", "/x%5cadmin", "/x%25", "/x%3badmin",
			"/a%7e", "/a%2D", "/x%zz", "/x%4", "*", "/x\x80", "/x\x7f",
		} {
			id := fmt.Sprintf("haproxy-raw-%d", i)
			status := rawStatus(t, base, "GET "+target+" HTTP/1.1\r\nHost: "+appHost+"\r\n"+requestIDHeader+": "+id+"\r\nConnection: close\r\n\r\n")
			if status != http.StatusBadRequest {
				t.Errorf("GET %q: status %d, want 400", target, status)
			}
			nowhere(t, result{id: id})
		}
		// Encodings with one meaning, and anything in the query, are fine.
		for _, uri := range []string{"/a%20b", "/%E2%82%AC", "/x?next=/a/../b;c%2F%00", "/a.b/..c/.d"} {
			atApp(t, get(t, uri))
		}
	})

	t.Run("the service's own routes under /_forwardauth/ are passed to it without a check", func(t *testing.T) {
		r := get(t, "/_forwardauth/callback?code=1", append([]string{"X-Forwarded-Host", "evil.example", "X-Original-URL", "http://evil.example/"}, forgedIdentity...)...)
		if r.status != http.StatusOK || string(r.body) != "the service's own route" {
			t.Fatalf("got %d %q, want the service's route", r.status, r.body)
		}
		if len(app.got(r.id)) != 0 {
			t.Errorf("the application was reached")
		}
		calls := svc.got(r.id)
		if len(calls) != 1 || calls[0].uri != "/_forwardauth/callback?code=1" {
			t.Fatalf("the service got %v, want only GET /_forwardauth/callback?code=1 (no check)", calls)
		}
		h := calls[0].header
		if got := identityHeaders(h); len(got) != 0 {
			t.Errorf("the service saw %v", got)
		}
		if h.Get("X-Forwarded-Host") != appHost || h.Get("X-Original-Url") != "" {
			t.Errorf("the service saw X-Forwarded-Host %q, X-Original-URL %q", h.Get("X-Forwarded-Host"), h.Get("X-Original-Url"))
		}
	})

	t.Run("an OPTIONS with a body is refused; a preflight is not", func(t *testing.T) {
		preflight := []string{"Origin", "https://other.example", "Access-Control-Request-Method", "POST"}
		r := haproxyRequest(t, c, base, "OPTIONS", "/api", strings.NewReader("a=1"), preflight...)
		if r.status != http.StatusBadRequest {
			t.Errorf("OPTIONS with a body: %d, want 400", r.status)
		}
		nowhere(t, r)
		r = haproxyRequest(t, c, base, "OPTIONS", "/api", nil, preflight...)
		if e := atApp(t, r); e.method != "OPTIONS" {
			t.Errorf("the application got %s", e.method)
		}
	})

	t.Run("client trailers never reach the application", func(t *testing.T) {
		// HTTP/1.1: a chunked body (the only kind with trailers) is refused.
		id := "haproxy-chunked"
		status := rawStatus(t, base, "POST /upload HTTP/1.1\r\nHost: "+appHost+"\r\n"+requestIDHeader+": "+id+
			"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n1\r\na\r\n0\r\nX-Authgear-User-Id: admin\r\n\r\n")
		if status != http.StatusLengthRequired {
			t.Errorf("chunked POST: %d, want 411", status)
		}
		nowhere(t, result{id: id})

		// HTTP/2 (cleartext, prior knowledge, which HAProxy accepts on any
		// HTTP bind).
		p := new(http.Protocols)
		p.SetUnencryptedHTTP2(true)
		trailer := func(body io.Reader, length int64) result {
			// A connection of its own: HAProxy closes one (GOAWAY) after
			// refusing a request whose body it did not read, and a request
			// on it could not be retried with its body.
			tr := &http.Transport{Protocols: p}
			defer tr.CloseIdleConnections()
			req, _ := http.NewRequest("POST", base+"/upload", body)
			req.ContentLength = length
			req.Trailer = http.Header{"X-Authgear-User-Id": {"admin"}, "X-Other-Trailer": {"x"}}
			return haproxyRequestH2(t, &http.Client{Timeout: 30 * time.Second, Transport: tr}, req)
		}
		// A body of unknown length: refused.
		r := trailer(io.MultiReader(strings.NewReader("abc")), -1)
		if r.status != http.StatusLengthRequired {
			t.Errorf("HTTP/2 body of unknown length: %d, want 411", r.status)
		}
		nowhere(t, r)
		// No body, trailers only: passed with Content-Length: 0, without them.
		r = trailer(io.MultiReader(), -1)
		e := atApp(t, r)
		if len(e.trailer) != 0 || e.body != "" || e.length != 0 {
			t.Errorf("the application got trailers %v, body %q, length %d", e.trailer, e.body, e.length)
		}
		// A body of declared length: passed without its trailers.
		r = trailer(strings.NewReader("abc"), 3)
		e = atApp(t, r)
		if len(e.trailer) != 0 || e.body != "abc" {
			t.Errorf("the application got trailers %v, body %q", e.trailer, e.body)
		}
		for _, rr := range [][]recorded{app.got(r.id), svc.got(r.id)} {
			for _, x := range rr {
				if got := identityHeaders(x.header); len(got) > 1 || len(got) == 1 && x.header.Get("X-Authgear-User-Id") != "stub-user" {
					t.Errorf("identity headers %v", got)
				}
			}
		}
	})

	t.Run("a WebSocket upgrade goes through, checked and with the identity headers", func(t *testing.T) {
		id := "haproxy-websocket"
		conn, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
		_, err = io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: "+appHost+"\r\n"+requestIDHeader+": "+id+"\r\nUpgrade: websocket\r\n"+
			"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nX_Authgear_User_Id: admin\r\n\r\n")
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("status %d, want 101", resp.StatusCode)
		}
		_, _ = io.WriteString(conn, "hello")
		echoed, _ := io.ReadAll(br)
		if string(echoed) != "echo:hello" {
			t.Errorf("through the tunnel: %q, want echo:hello", echoed)
		}
		if len(svc.got(id)) != 1 {
			t.Errorf("the service was asked %d times, want 1", len(svc.got(id)))
		}
		got := app.got(id)
		if len(got) != 1 {
			t.Fatalf("the application got %d requests, want 1", len(got))
		}
		if ids := identityHeaders(got[0].header); fmt.Sprint(ids) != fmt.Sprint(map[string][]string{"X-Authgear-User-Id": {"stub-user"}}) {
			t.Errorf("the application saw %v", ids)
		}
	})

	t.Run("connections to the service are kept alive", func(t *testing.T) {
		before := svc.connections()
		const n = 40
		for i := 0; i < n; i++ {
			atApp(t, get(t, "/keepalive"))
		}
		// HAProxy keeps idle connections per thread: a handful, not one per request.
		if opened := svc.connections() - before; opened > n/4 {
			t.Errorf("%d requests opened %d connections to the service", n, opened)
		}
	})
}

// haproxyRequestH2 sends req (to HAProxy, over HTTP/2) with Host
// app.example.com and a fresh X-E2e-Request-Id.
func haproxyRequestH2(t *testing.T, c *http.Client, req *http.Request) result {
	t.Helper()
	requestSeq.Lock()
	requestSeq.n++
	id := fmt.Sprintf("haproxy-h2-%d", requestSeq.n)
	requestSeq.Unlock()
	req.Host = appHost
	req.Header.Set(requestIDHeader, id)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("answered over %s, want HTTP/2", resp.Proto)
	}
	b, _ := io.ReadAll(resp.Body)
	return result{id: id, status: resp.StatusCode, header: resp.Header, body: b}
}

// TestHAProxyFailsClosed: a service that does not answer in time, a service
// that cannot be reached, and a route left without a check all end before
// the application.
func TestHAProxyFailsClosed(t *testing.T) {
	svc := stubService(t)
	app := appRecorder(t)
	c := &http.Client{Timeout: 60 * time.Second}
	check := func(t *testing.T, base, uri string, answer string, want func(int) bool) {
		t.Helper()
		r := haproxyRequest(t, c, base, "GET", uri, nil, stubAnswerHeader, answer)
		if !want(r.status) {
			t.Errorf("GET %s (%s): status %d", uri, answer, r.status)
		}
		if len(app.got(r.id)) != 0 {
			t.Errorf("GET %s (%s): the application was reached", uri, answer)
		}
	}
	is5xx := func(s int) bool { return s >= 500 && s <= 599 }

	t.Run("the service does not answer in time: 5xx", func(t *testing.T) {
		base := startHAProxyWith(t, svc.addr(), app.addr(), "int(3000)", "int(100)")
		check(t, base, "/hello", "hang", is5xx)
	})

	t.Run("the service cannot be reached: 5xx", func(t *testing.T) {
		// The stand-in answers waitRouted; the /admin route's calls go to a
		// closed port.
		closed := freePort(t)
		base := startHAProxyWith(t, svc.addr(), app.addr(),
			`"http://`+svc.addr()+`/auth?roles=admin"`, fmt.Sprintf(`"http://127.0.0.1:%d/auth?roles=admin"`, closed))
		check(t, base, "/admin/x", "", is5xx)
	})

	t.Run("a route whose check was left out: 500", func(t *testing.T) {
		base := startHAProxyWith(t, svc.addr(), app.addr(),
			`http-request lua.forwardauth "http://`+svc.addr()+`/auth?roles=admin" if admin_route`, "")
		check(t, base, "/admin/x", "", func(s int) bool { return s == http.StatusInternalServerError })
		// The other routes still work.
		r := haproxyRequest(t, c, base, "GET", "/hello", nil)
		if r.status != http.StatusOK || len(app.got(r.id)) != 1 {
			t.Errorf("GET /hello: %d, application reached %d times", r.status, len(app.got(r.id)))
		}
	})
}
