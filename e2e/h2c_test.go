//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	//lint:ignore SA1019 the application under attack: deprecated, still deployed
	"golang.org/x/net/http2/h2c"
	"golang.org/x/net/http2/hpack"

	"github.com/authgear/authgear-forwardauth/resolver"
)

// TestH2CSmuggling is h2c request smuggling (Bishop Fox, 2020) through every
// shipped recipe: a request the gateway allows asks to upgrade to h2c; if the
// gateway passes the upgrade on and the application switches, the gateway
// turns the connection into a tunnel, and what the client then sends as
// HTTP/2 (here /admin/panel with forged X-Authgear-* headers) reaches the
// application unchecked. The application is golang.org/x/net's h2c handler,
// as is (it switches when Upgrade names h2c and Connection names
// HTTP2-Settings) and lenient (it switches on Upgrade: h2c alone, as servers
// that never look at Connection do). Whatever the gateway answers, the
// application must serve only requests the test sent through the gateway,
// with the service's identity, and never see an Upgrade other than websocket,
// nor an HTTP2-Settings header next to an Upgrade.
func TestH2CSmuggling(t *testing.T) {
	st := newStack(t)
	app := newH2CUpstream(t)
	st.upstream = app.asUpstream()
	const settings = "AAMAAABkAARAAAAAAAIAAAAA" // SETTINGS_MAX_CONCURRENT_STREAMS 100, ...
	variants := []struct {
		name  string
		lines []string
	}{
		{"Connection: Upgrade, HTTP2-Settings", []string{"Upgrade: h2c", "HTTP2-Settings: " + settings, "Connection: Upgrade, HTTP2-Settings"}},
		// Many proxies drop the headers Connection names: HTTP2-Settings
		// as a plain header survives that.
		{"Connection: Upgrade", []string{"Upgrade: h2c", "HTTP2-Settings: " + settings, "Connection: Upgrade"}},
		{"lower case", []string{"upgrade: H2C", "http2-settings: " + settings, "connection: upgrade, http2-settings"}},
		{"Upgrade list", []string{"Upgrade: websocket, h2c", "HTTP2-Settings: " + settings, "Connection: Upgrade, HTTP2-Settings"}},
	}
	entries := []struct {
		name   string
		target string
		fields []field
		want   *resolver.Identity
	}{
		{"optional route, no credential", "/public/page", nil, nil},
		{"signed in", "/hello", credAlice.fields(), &userAlice},
	}
	for _, gw := range gateways {
		t.Run(gw.name, func(t *testing.T) {
			base := gw.start(t, st)
			addr := strings.TrimPrefix(base, "http://")
			for _, lenient := range []bool{false, true} {
				mode := "strict application"
				if lenient {
					mode = "lenient application"
				}
				for _, e := range entries {
					for _, v := range variants {
						t.Run(mode+"/"+e.name+"/"+v.name, func(t *testing.T) {
							app.lenient.Store(lenient)
							id := app.next()
							var b strings.Builder
							fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\n%s: %s\r\n", e.target, appHost, requestIDHeader, id)
							for _, f := range e.fields {
								fmt.Fprintf(&b, "%s: %s\r\n", f.Name, f.Value)
							}
							for _, l := range v.lines {
								b.WriteString(l + "\r\n")
							}
							b.WriteString("\r\n")
							status, smuggled := smuggleH2C(t, addr, b.String(), app.smuggledID())
							t.Logf("the gateway answered %d", status)
							if status == http.StatusSwitchingProtocols {
								t.Errorf("the gateway switched the connection to h2c (%s): what follows on it is no longer checked", smuggled)
							}
							app.check(t, id, e.want)
						})
					}
				}
			}
			// A WebSocket upgrade still works where the recipe passes
			// upgrades on (not nginx's), with the service's identity.
			t.Run("websocket upgrade, signed in", func(t *testing.T) {
				id := app.next()
				var b strings.Builder
				fmt.Fprintf(&b, "GET /hello HTTP/1.1\r\nHost: %s\r\n%s: %s\r\n", appHost, requestIDHeader, id)
				for _, f := range credAlice.fields() {
					fmt.Fprintf(&b, "%s: %s\r\n", f.Name, f.Value)
				}
				b.WriteString("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
				status, echoed := websocketRoundTrip(t, addr, b.String())
				r, ok := app.request(id)
				if !ok {
					t.Fatalf("the WebSocket upgrade did not reach the application (status %d)", status)
				}
				switch {
				case gw.name == "nginx":
					if status != http.StatusOK || r.upgrade != "" {
						t.Errorf("nginx: status %d, the application saw Upgrade %q; want 200 and none (the recipe passes no upgrade on)", status, r.upgrade)
					}
				case status != http.StatusSwitchingProtocols:
					t.Errorf("status %d, want 101 (the application switched to websocket)", status)
				case echoed != "ping":
					t.Errorf("through the WebSocket tunnel came back %q, want %q", echoed, "ping")
				}
				app.check(t, id, &userAlice)
			})
			app.checkNoStrangers(t)
		})
	}
}

// smuggleH2C sends the HTTP/1.1 request and, when the gateway answers 101,
// speaks HTTP/2 on the connection as the attacker would: the preface, then
// GET /admin/panel with forged identity headers on stream 3 (the upgraded
// request is stream 1, RFC 7540 3.2), tagged smuggledID. It returns the
// gateway's status and what became of the smuggled request.
func smuggleH2C(t *testing.T, addr, req, smuggledID string) (int, string) {
	t.Helper()
	c, br, resp, err := upgrade(t, addr, req)
	if err != nil {
		return 0, "no answer: " + err.Error()
	}
	defer c.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return resp.StatusCode, ""
	}

	fr := http2.NewFramer(c, br)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		return resp.StatusCode, "writing the preface: " + err.Error()
	}
	if err := fr.WriteSettings(); err != nil {
		return resp.StatusCode, "writing SETTINGS: " + err.Error()
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{
		{":method", "GET"}, {":scheme", "http"}, {":authority", appHost}, {":path", "/admin/panel"},
		{"x-authgear-user-id", "forged"}, {"x-authgear-user-roles", "admin"},
		{strings.ToLower(requestIDHeader), smuggledID},
	} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		return resp.StatusCode, "writing HEADERS: " + err.Error()
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return resp.StatusCode, "smuggled request: connection ended: " + err.Error()
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == 3 {
				return resp.StatusCode, "smuggled GET /admin/panel answered " + f.PseudoValue("status")
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == 3 {
				return resp.StatusCode, "smuggled request reset: " + f.ErrCode.String()
			}
		case *http2.GoAwayFrame:
			return resp.StatusCode, "smuggled request: GOAWAY " + f.ErrCode.String()
		}
	}
}

// upgrade writes req (a whole HTTP/1.1 request head) on a new connection to
// addr and reads the answer's head; on a 101 the connection is the tunnel
// (read it through br), otherwise the body has been drained. The caller
// closes c (nil with an error).
func upgrade(t *testing.T, addr, req string) (c net.Conn, br *bufio.Reader, resp *http.Response, err error) {
	t.Helper()
	c, err = net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	// Only so that a gateway that neither answers nor closes cannot hang
	// the test; no assertion depends on it.
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br = bufio.NewReader(c)
	if resp, err = http.ReadResponse(br, nil); err != nil {
		c.Close()
		return nil, nil, nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return c, br, resp, nil
}

// websocketRoundTrip sends the upgrade request; on 101 it writes "ping"
// through the tunnel and returns what came back.
func websocketRoundTrip(t *testing.T, addr, req string) (int, string) {
	t.Helper()
	c, br, resp, err := upgrade(t, addr, req)
	if err != nil {
		t.Fatalf("no answer to the WebSocket upgrade: %v", err)
	}
	defer c.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return resp.StatusCode, ""
	}
	if _, err := io.WriteString(c, "ping"); err != nil {
		return resp.StatusCode, err.Error()
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(br, got); err != nil {
		return resp.StatusCode, err.Error()
	}
	return resp.StatusCode, string(got)
}

// --- the application -------------------------------------------------------------

// h2cRequest is what the application served.
type h2cRequest struct {
	id       string
	path     string
	http2    bool
	upgrade  string // the Upgrade header(s) it saw, joined
	settings bool   // it saw an HTTP2-Settings header
	identity http.Header
	reported bool // checkNoStrangers has reported it
}

// h2cUpstream is an application served by golang.org/x/net/http2/h2c, which
// records every request it serves, over HTTP/1.1 or HTTP/2. It answers a
// WebSocket upgrade with 101 and then echoes bytes (no WebSocket framing:
// the gateways only tunnel them).
type h2cUpstream struct {
	srv     *httptest.Server
	lenient atomic.Bool // upgrade on Upgrade: h2c alone
	seq     atomic.Int64

	mu   sync.Mutex
	sent map[string]bool // ids of requests the test sent through the gateway
	seen []h2cRequest
}

// lenientSettingsHeader marks an empty HTTP2-Settings the lenient
// application added itself.
const lenientSettingsHeader = "X-E2e-Lenient-Settings"

func newH2CUpstream(t *testing.T) *h2cUpstream {
	u := &h2cUpstream{sent: map[string]bool{}}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := h2cRequest{
			id: r.Header.Get(requestIDHeader), path: r.URL.Path, http2: r.ProtoMajor == 2,
			upgrade:  strings.Join(r.Header.Values("Upgrade"), ", "),
			settings: len(r.Header.Values("Http2-Settings")) > 0 && r.Header.Get(lenientSettingsHeader) == "",
			identity: http.Header{},
		}
		for name, vs := range r.Header {
			if strings.HasPrefix(squashed(name), "xauthgear") {
				rec.identity[name] = vs
			}
		}
		u.mu.Lock()
		u.seen = append(u.seen, rec)
		u.mu.Unlock()
		if r.ProtoMajor == 1 && httpguts.HeaderValuesContainsToken(r.Header.Values("Upgrade"), "websocket") {
			w.Header().Set("Upgrade", "websocket")
			w.Header().Set("Connection", "Upgrade")
			// RFC 6455 4.2.2: HAProxy checks it.
			sum := sha1.Sum([]byte(r.Header.Get("Sec-Websocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
			w.Header().Set("Sec-WebSocket-Accept", base64.StdEncoding.EncodeToString(sum[:]))
			w.WriteHeader(http.StatusSwitchingProtocols)
			c, rw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer c.Close()
			_ = rw.Flush()
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			_, _ = io.Copy(c, rw)
			return
		}
		fmt.Fprintf(w, "served %s over HTTP/%d\n", r.URL.Path, r.ProtoMajor)
	})
	//lint:ignore SA1019 the application under attack: deprecated, still deployed
	h := h2c.NewHandler(app, &http2.Server{})
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u.lenient.Load() && httpguts.HeaderValuesContainsToken(r.Header.Values("Upgrade"), "h2c") {
			// A server that switches on Upgrade alone.
			r.Header.Add("Connection", "HTTP2-Settings")
			if len(r.Header.Values("Http2-Settings")) == 0 {
				r.Header.Set("Http2-Settings", "")
				r.Header.Set(lenientSettingsHeader, "added")
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// asUpstream lets the gateway starters proxy to this application.
func (u *h2cUpstream) asUpstream() *upstream {
	return &upstream{Server: &httptest.Server{URL: u.srv.URL}, seen: map[string]bool{}}
}

// next returns a fresh id for a request the test sends through the
// gateway, the only kind the application may serve.
func (u *h2cUpstream) next() string {
	id := "h2c-" + strconv.FormatInt(u.seq.Add(1), 10)
	u.mu.Lock()
	defer u.mu.Unlock()
	u.sent[id] = true
	return id
}

// smuggledID returns an id for a request sent inside a tunnel.
func (u *h2cUpstream) smuggledID() string {
	return "smuggled-" + strconv.FormatInt(u.seq.Add(1), 10)
}

func (u *h2cUpstream) request(id string) (h2cRequest, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	i := slices.IndexFunc(u.seen, func(r h2cRequest) bool { return r.id == id })
	if i < 0 {
		return h2cRequest{}, false
	}
	return u.seen[i], true
}

// check checks what the application served for the request id: the
// service's identity (want; nil when nobody is signed in), no Upgrade but
// websocket, no HTTP2-Settings; and that it served nothing the test did not
// send through the gateway.
func (u *h2cUpstream) check(t *testing.T, id string, want *resolver.Identity) {
	t.Helper()
	u.checkNoStrangers(t)
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, r := range u.seen {
		if r.id != id {
			continue
		}
		n++
		if r.upgrade != "" && !strings.EqualFold(r.upgrade, "websocket") {
			t.Errorf("the application saw Upgrade %q (only websocket may reach it)", r.upgrade)
		}
		// Without an Upgrade (nginx passes none on) HTTP2-Settings is inert.
		if r.settings && r.upgrade != "" {
			t.Errorf("the application saw an HTTP2-Settings header with Upgrade %q", r.upgrade)
		}
		for _, bad := range identityMismatch(r.identity, want) {
			t.Errorf("the application saw %s", bad)
		}
	}
	if n > 1 {
		t.Errorf("the application served the request %d times", n)
	}
}

// checkNoStrangers fails on every request the application served that the
// test did not send through the gateway (a smuggled one, or one without an
// id), once.
func (u *h2cUpstream) checkNoStrangers(t *testing.T) {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	for i, r := range u.seen {
		if !u.sent[r.id] && !r.reported {
			t.Errorf("the application served %s (id %q, HTTP/%d) that did not pass the gateway's check, with identity headers %v",
				r.path, r.id, protoMajor(r), r.identity)
			u.seen[i].reported = true
		}
	}
}

func protoMajor(r h2cRequest) int {
	if r.http2 {
		return 2
	}
	return 1
}

// identityMismatch lists how h differs from the service's identity headers
// for want (nil: nobody signed in, every one absent or empty,
// X-Authgear-Session-Valid possibly "false").
func identityMismatch(h http.Header, want *resolver.Identity) []string {
	var bad []string
	known := map[string]bool{http.CanonicalHeaderKey(headerAssertion): true}
	for _, name := range resolver.IdentityHeaders() {
		known[http.CanonicalHeaderKey(name)] = true
	}
	for name, vs := range h {
		if !known[name] {
			bad = append(bad, fmt.Sprintf("%s: %q from the client", name, vs))
		}
	}
	var wantValues map[string]string
	if want != nil {
		wantValues = identityValues(*want)
	}
	for _, name := range resolver.IdentityHeaders() {
		got := h.Values(name)
		switch {
		case len(got) > 1:
			bad = append(bad, fmt.Sprintf("%s %d times: %q", name, len(got), got))
		case want != nil && (len(got) != 1 || got[0] != wantValues[name]):
			bad = append(bad, fmt.Sprintf("%s: %q, want [%q]", name, got, wantValues[name]))
		case want == nil && len(got) == 1 && got[0] != "" && (name != resolver.HeaderSessionValid || got[0] != "false"):
			bad = append(bad, fmt.Sprintf("%s: %q with nobody signed in", name, got))
		}
	}
	return bad
}
