//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// cgiUpstream is the application behind the gateway in the hostile suite: a
// raw HTTP/1.1 server (no net/http, which would canonicalise or refuse what a
// gateway sends) that records what a CGI-style application would make of
// each request: the raw request line and header lines, request trailers, the
// body's length, the header variables as PHP's $_SERVER and a WSGI environ
// name them, and the route a lenient application would think it serves.
type cgiUpstream struct {
	ln   net.Listener
	mu   sync.Mutex
	seen map[string][]*cgiView // by the request's X-E2e-Request-Id
	all  int
}

// field is one header or trailer line as received.
type field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// cgiView is what the application saw of one request.
type cgiView struct {
	RequestLine string  `json:"request_line"`
	Method      string  `json:"method"`
	Target      string  `json:"target"`
	Fields      []field `json:"fields"`
	Trailers    []field `json:"trailers,omitempty"`
	Chunked     bool    `json:"chunked"`
	BodyLength  int     `json:"body_length"`
	Error       string  `json:"error,omitempty"` // the request could not be read
	// Env maps each header line to its CGI variable (HTTP_ + upper case, every
	// character other than A-Z and 0-9 turned into _), values in arrival
	// order. PHP keeps one of several values (which one depends on the server
	// in front), gunicorn and Rack servers join them with a comma: either way
	// a second value under a variable is a forgery the application may take.
	Env map[string][]string `json:"env"`
	// Route is what a lenient application serves for Target (see judgeRoute),
	// and Reading the path reading that made it so.
	Route   string `json:"route"`
	Reading string `json:"reading"`
}

func newCGIUpstream(t *testing.T) *cgiUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &cgiUpstream{ln: ln, seen: map[string][]*cgiView{}}
	var wg sync.WaitGroup
	conns := map[net.Conn]struct{}{}
	var connsMu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			connsMu.Lock()
			conns[c] = struct{}{}
			connsMu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				u.serve(c)
				connsMu.Lock()
				delete(conns, c)
				connsMu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		connsMu.Lock()
		for c := range conns {
			c.Close()
		}
		connsMu.Unlock()
		wg.Wait()
	})
	return u
}

func (u *cgiUpstream) addr() string { return u.ln.Addr().String() }

// asUpstream lets the gateway starters, which proxy to st.upstream.addr(),
// proxy to this server instead.
func (u *cgiUpstream) asUpstream() *upstream {
	return &upstream{Server: &httptest.Server{URL: "http://" + u.addr()}, seen: map[string]bool{}}
}

// views returns what reached the application for a request id.
func (u *cgiUpstream) views(id string) []*cgiView {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.seen[id]
}

// unsent returns what reached the application without a request id the
// suite gave a request (none, or a smuggled request's).
func (u *cgiUpstream) unsent() []*cgiView {
	u.mu.Lock()
	defer u.mu.Unlock()
	var vs []*cgiView
	for id, v := range u.seen {
		if id == "" || strings.HasPrefix(id, "smuggled") {
			vs = append(vs, v...)
		}
	}
	return vs
}

func (u *cgiUpstream) record(v *cgiView) {
	id := strings.Join(v.Env["HTTP_X_E2E_REQUEST_ID"], ",")
	u.mu.Lock()
	u.seen[id] = append(u.seen[id], v)
	u.all++
	u.mu.Unlock()
}

// Limits of one request; beyond them the request is an error.
const (
	cgiMaxLine   = 64 << 10
	cgiMaxFields = 500
	cgiMaxBody   = 1 << 20
)

func (u *cgiUpstream) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 4096)
	for {
		v, keep, err := readCGIRequest(br)
		if v == nil {
			return // the connection ended between requests
		}
		if err != nil {
			v.Error = err.Error()
		}
		v.Route, v.Reading = judgeRoute(v.Target)
		u.record(v)
		body, _ := json.Marshal(v)
		status := "200 OK"
		if err != nil {
			status, keep = "400 Bad Request", false
		}
		conn := ""
		if !keep {
			conn = "Connection: close\r\n"
		}
		fmt.Fprintf(c, "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n", status, len(body), conn)
		if _, err := c.Write(body); err != nil || !keep {
			return
		}
	}
}

// readCGIRequest reads one request. It returns nil at a clean end of the
// connection, and a view with an error when the request is malformed.
func readCGIRequest(br *bufio.Reader) (v *cgiView, keepAlive bool, err error) {
	line, err := readLine(br)
	if err != nil {
		return nil, false, err
	}
	for line == "" { // tolerated empty lines between requests
		if line, err = readLine(br); err != nil {
			return nil, false, err
		}
	}
	v = &cgiView{RequestLine: line, Env: map[string][]string{}}
	parts := strings.Split(line, " ")
	if len(parts) != 3 || !strings.HasPrefix(parts[2], "HTTP/1.") {
		return v, false, fmt.Errorf("malformed request line %q", line)
	}
	v.Method, v.Target = parts[0], parts[1]
	keepAlive = parts[2] == "HTTP/1.1"

	v.Fields, err = readFields(br)
	if err != nil {
		return v, false, err
	}
	v.Env = cgiEnv(v.Fields)
	var contentLength = -1
	for _, f := range v.Fields {
		switch strings.ToLower(f.Name) {
		case "transfer-encoding":
			if strings.Contains(strings.ToLower(f.Value), "chunked") {
				v.Chunked = true
			}
		case "content-length":
			n, err := strconv.Atoi(strings.TrimSpace(f.Value))
			if err != nil || n < 0 || (contentLength >= 0 && n != contentLength) {
				return v, false, fmt.Errorf("bad Content-Length %q", f.Value)
			}
			contentLength = n
		case "connection":
			for _, tok := range strings.Split(strings.ToLower(f.Value), ",") {
				switch strings.TrimSpace(tok) {
				case "close":
					keepAlive = false
				case "keep-alive":
					keepAlive = true
				}
			}
		}
	}
	switch {
	case v.Chunked:
		n, trailers, err := readChunked(br)
		v.BodyLength, v.Trailers = n, trailers
		if err != nil {
			return v, false, err
		}
	case contentLength > cgiMaxBody:
		return v, false, fmt.Errorf("body of %d bytes", contentLength)
	case contentLength > 0:
		n, err := io.CopyN(io.Discard, br, int64(contentLength))
		v.BodyLength = int(n)
		if err != nil {
			return v, false, err
		}
	}
	return v, keepAlive, nil
}

func readLine(br *bufio.Reader) (string, error) {
	var b []byte
	for {
		chunk, isPrefix, err := br.ReadLine()
		if err != nil {
			return "", err
		}
		b = append(b, chunk...)
		if len(b) > cgiMaxLine {
			return "", errors.New("line too long")
		}
		if !isPrefix {
			return string(b), nil
		}
	}
}

// readFields reads header (or trailer) lines up to the empty line. An
// obsolete line folding (a line starting with a space or tab) continues the
// previous value, as lenient servers read it.
func readFields(br *bufio.Reader) ([]field, error) {
	var fs []field
	for {
		line, err := readLine(br)
		if err != nil {
			return fs, err
		}
		if line == "" {
			return fs, nil
		}
		if len(fs) >= cgiMaxFields {
			return fs, errors.New("too many fields")
		}
		if (line[0] == ' ' || line[0] == '\t') && len(fs) > 0 {
			fs[len(fs)-1].Value += " " + strings.TrimSpace(line)
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return fs, fmt.Errorf("malformed field line %q", line)
		}
		fs = append(fs, field{Name: name, Value: strings.Trim(value, " \t")})
	}
}

func readChunked(br *bufio.Reader) (int, []field, error) {
	total := 0
	for {
		line, err := readLine(br)
		if err != nil {
			return total, nil, err
		}
		sizeText, _, _ := strings.Cut(line, ";")
		size, err := strconv.ParseInt(strings.TrimSpace(sizeText), 16, 32)
		if err != nil || size < 0 {
			return total, nil, fmt.Errorf("bad chunk size %q", line)
		}
		if size == 0 {
			trailers, err := readFields(br)
			return total, trailers, err
		}
		if total += int(size); total > cgiMaxBody {
			return total, nil, errors.New("body too large")
		}
		if _, err := io.CopyN(io.Discard, br, size); err != nil {
			return total, nil, err
		}
		if crlf, err := readLine(br); err != nil || crlf != "" {
			return total, nil, fmt.Errorf("chunk not followed by CRLF")
		}
	}
}

// cgiName is the variable a header becomes in a CGI environment (PHP's
// $_SERVER, a WSGI environ, Rack's env): HTTP_ and the name in upper case
// with every character other than A-Z and 0-9 as _. So X-Authgear-User-Id,
// x_authgear_user_id and X.Authgear.User.Id are one variable.
func cgiName(name string) string {
	b := []byte("HTTP_" + name)
	for i := 5; i < len(b); i++ {
		switch c := b[i]; {
		case c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		default:
			b[i] = '_'
		}
	}
	return string(b)
}

func cgiEnv(fs []field) map[string][]string {
	env := map[string][]string{}
	for _, f := range fs {
		n := cgiName(f.Name)
		env[n] = append(env[n], f.Value)
	}
	return env
}

// squashed is a header name lowercased with everything but a-z and 0-9
// removed: the service refuses any header whose squashed name starts with
// "xauthgear", and so does the hostile suite at the application.
func squashed(name string) string {
	var b strings.Builder
	for _, c := range []byte(strings.ToLower(name)) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// --- how lenient applications read a path ---------------------------------------

// The routes of the shipped recipes, strongest first: /admin needs the admin
// role, the default route a signed-in user, /public (optional) nobody.
const (
	routeAdmin   = "admin"
	routeDefault = "default"
	routePublic  = "public"
)

// judgeRoute is the strongest route some application could serve for the
// request target, and the path reading that leads there. The readings are
// every combination of what real servers do: decode %XX zero, one or two
// times (a second decode by a framework or a rewrite), cut at a decoded ? or
// #, fold \ to / (IIS), drop ;parameters of segments (Tomcat, Jetty, Spring),
// drop NUL and what follows (C strings), collapse // and resolve . and ..
// (or only collapse //, or neither), and compare case-insensitively
// (Express, ASP.NET Core, IIS) or not.
//
// A reading is /admin when it starts with /admin in any case (the admin area
// of a case-insensitive application), /public only when it starts with
// /public exactly (a case-sensitive application serves /PUBLIC/x from its
// default route, which needs a sign-in), and the default route otherwise.
func judgeRoute(target string) (route, reading string) {
	p := target
	if u, err := url.Parse(target); err == nil && u.Scheme != "" && u.Host != "" {
		// The absolute form: the application reads the path part.
		p = strings.TrimPrefix(target, u.Scheme+"://"+u.Host)
		if p == "" {
			p = "/"
		}
	}
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	route, reading = routePublic, p
	rank := map[string]int{routePublic: 0, routeDefault: 1, routeAdmin: 2}
	d1 := lenientUnescape(p)
	for _, decoded := range []string{p, d1, lenientUnescape(d1)} {
		for _, cut := range []bool{false, true} {
			s := decoded
			if cut {
				if i := strings.IndexAny(s, "?#"); i >= 0 {
					s = s[:i]
				}
			}
			for _, fold := range []bool{false, true} {
				s2 := s
				if fold {
					s2 = strings.ReplaceAll(s2, `\`, "/")
				}
				for _, params := range []bool{false, true} {
					s3 := s2
					if params {
						s3 = dropParams(s3)
						if i := strings.IndexByte(s3, 0); i >= 0 {
							s3 = s3[:i]
						}
					}
					for _, clean := range []int{0, 1, 2} {
						s4 := s3
						switch clean {
						case 1:
							for strings.Contains(s4, "//") {
								s4 = strings.ReplaceAll(s4, "//", "/")
							}
						case 2:
							s4 = path.Clean("/" + s4)
						}
						r := routeOf(s4)
						if rank[r] > rank[route] {
							route, reading = r, s4
						}
					}
				}
			}
		}
	}
	return route, reading
}

func routeOf(p string) string {
	switch {
	case strings.HasPrefix(strings.ToLower(p), "/admin"):
		return routeAdmin
	case strings.HasPrefix(p, "/public"):
		return routePublic
	}
	return routeDefault
}

// lenientUnescape decodes every valid %XX and keeps anything else as is.
func lenientUnescape(s string) string {
	var b bytes.Buffer
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// dropParams removes ;parameters from every segment: /a;x=1/b;y -> /a/b.
func dropParams(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if j := strings.IndexByte(s, ';'); j >= 0 {
			segs[i] = s[:j]
		}
	}
	return strings.Join(segs, "/")
}
