package handler

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// readmeAmbiguousPath is the rule as the README gives it to gateways; the
// service's own check must agree with it on every path it covers.
var readmeAmbiguousPath = regexp.MustCompile(`(?i)^[^?]*(%(2[5def]|3[0-9b]|[46][1-9a-f]|[57][0-9a]|5[cf]|7[ef]|[01][0-9a-f])|[\\;]|//|/\.\.?(/|\?|#|%23|%3f|$))`)

func TestAmbiguousTarget(t *testing.T) {
	tests := []struct {
		target    string
		ambiguous bool
	}{
		{"/", false},
		{"/admin", false},
		{"/admin/", false},
		{"/public/page?x=1&y=a%20b", false},
		{"/caf%C3%A9/menu", false},
		{"/a%20b", false},
		{"/search?q=../../etc&r=%2F%5C;", false}, // the query is not a path
		{"/a.b/c..d/.e/f.", false},
		{"/%40user", false},
		{"/%3Fnot-a-query", false},

		{"/public/..%2Fadmin", true},
		{"/public%2f..%2fadmin", true},
		{"/%2Fadmin", true},
		{"/public/%2e%2e/admin", true},
		{"/public/%2E./admin", true},
		{"/%61dmin", true},
		{"/ADMIN%2d", true},
		{"/x%7e", true},
		{"/x%5f", true},
		{"/public/%252F..%252Fadmin", true},
		{"/public%255c..%255cadmin", true},
		{"/public\\..\\admin", true},
		{"/public%5C..%5Cadmin", true},
		{"/public/..;/admin", true},
		{"/admin;jsessionid=1", true},
		{"/public%3B/admin", true},
		{"/public/%00/admin", true},
		{"/public/%0a", true},
		{"/x%7F", true},
		{"//admin", true},
		{"/public//../admin", true},
		{"/public/../admin", true},
		{"/public/./admin", true},
		{"/public/..", true},
		{"/public/.", true},
		{"/public/..?x", true},
		{"/public/.?x", true},
		{"/public/..%3F/admin", true},
		{"/public/..%3fx", true},
		{"/public/.%23", true},
		{"/public/..#/admin", true},
		{"/public/..#", true},
		{"/a%3F..%23b/c", false},
		{"/a.%3Fb/..x%23", false},
		{"/..", true},
		{"/.", true},

		// Only here: what a regex in a gateway config need not cover.
		{"", true},
		{"admin", true},
		{"http://app.example/admin", true},
		{"/caf\xc3\xa9", true},
		{"/a b", true},
		{"/a\tb", true},
		{"/bad%zzescape", true},
		{"/bad%2", true},
		{"/bad%", true},
	}
	for _, tt := range tests {
		if got := ambiguousTarget(tt.target); got != tt.ambiguous {
			t.Errorf("ambiguousTarget(%q) = %v, want %v", tt.target, got, tt.ambiguous)
		}
		if regexCovers(tt.target) {
			if got := readmeAmbiguousPath.MatchString(tt.target); got != tt.ambiguous {
				t.Errorf("the README's regex on %q = %v, want %v", tt.target, got, tt.ambiguous)
			}
		}
	}
}

// regexCovers: gateways refuse themselves what the README's regex leaves
// out (targets not starting with '/', raw bytes outside visible ASCII,
// malformed escapes); the service refuses those too.
func regexCovers(target string) bool {
	if !strings.HasPrefix(target, "/") {
		return false
	}
	for i := 0; i < len(target); i++ {
		if target[i] <= ' ' || target[i] >= 0x7f {
			return false
		}
		if target[i] == '%' && (i+2 >= len(target) || !isHex(target[i+1]) || !isHex(target[i+2])) {
			return false
		}
	}
	return true
}

// Every escape: the regex and the table agree byte for byte.
func TestAmbiguousEscapeTableMatchesRegex(t *testing.T) {
	const hexdig = "0123456789abcdef"
	for b := 0; b < 256; b++ {
		for _, h := range []string{hexdig, strings.ToUpper(hexdig)} {
			target := "/x%" + string(h[b>>4]) + string(h[b&15]) + "y"
			if a, r := ambiguousTarget(target), readmeAmbiguousPath.MatchString(target); a != r {
				t.Errorf("%s: service %v, README regex %v", target, a, r)
			}
		}
	}
}

func TestMethodOverrideSpellings(t *testing.T) {
	for _, name := range []string{"X-Http-Method-Override", "X_HTTP_Method_Override", "X.HTTP.Method.Override", "x-http-method",
		"X-Method-Override", "XMETHODOVERRIDE", "-X-HTTP-Method"} {
		if !methodOverride(name) {
			t.Errorf("%q not recognised as a method override", name)
		}
	}
	for _, name := range []string{"X-Http-Method-Overrides", "X-Http", "Method-Override", "X-Http-Methodology", "Origin"} {
		if methodOverride(name) {
			t.Errorf("%q taken for a method override", name)
		}
	}
}

func TestClientIdentityHeader(t *testing.T) {
	forged := []string{
		"X-Authgear-User-Id", "x-authgear-user-id", "X_Authgear_User_Id", "X.Authgear.User.Id",
		"XAuthgearUserId", "X-AUTHGEAR-SESSION-VALID", "X--Authgear--Roles", "X-Authgear-Jwt-Assertion",
		"x_authgear", "X-Authgear-Anything-New", "X-Au.th_gear-User", "-X-Authgear-User-Id", "_X_Authgear_User_Roles", ".x.authgear",
	}
	for _, name := range forged {
		if !readHeaders(http.Header{name: {"admin"}}).identityHeader {
			t.Errorf("%q not recognised as an identity header", name)
		}
	}
	fine := []string{"X-Forwarded-For", "X-Auth", "X-Authgearish", "Authorization", "X-Request-Id", "Xauthgea", "X-Real-Authgear", "X1authgear"}
	for _, name := range fine {
		if name == "X-Authgearish" {
			continue // starts with xauthgear: refused too, harmlessly
		}
		if readHeaders(http.Header{name: {"v"}}).identityHeader {
			t.Errorf("%q taken for an identity header", name)
		}
	}
}

// Refusals come before credentials: Authgear is never asked.
func TestHostileRequestsRefusedBeforeAuthgear(t *testing.T) {
	tests := []struct {
		name   string
		header http.Header
		status int
	}{
		{"forged identity, no credential", hdr("X-Authgear-User-Id", "admin"), 400},
		{"forged identity in CGI spelling, valid token", hdr("X_Authgear_User_Roles", "admin", "Authorization", "Bearer "+aliceToken), 400},
		{"forged assertion", hdr("x-authgear-jwt-assertion", "e30.e30.", "Authorization", "Bearer "+aliceToken), 400},
		{"encoded slash via nginx", hdr("X-Original-Method", "GET", "X-Original-Uri", "/public/..%2Fadmin", "Authorization", "Bearer "+aliceToken), 400},
		{"encoded slash via nginx's URL", hdr("X-Original-Method", "GET", "X-Original-Url", "http://app.example/public/..%2Fadmin"), 400},
		{"double encoding via Traefik", hdr("X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/public/%252e%252e/admin", "Authorization", "Bearer "+aliceToken), 400},
		{"Tomcat parameters via Caddy", hdr("X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/public/..;/admin"), 400},
		{"a clean path", hdr("X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/admin/panel?x=%2F", "Authorization", "Bearer "+aliceToken), 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t, stackOptions{trusted: testProxies})
			w := s.do("GET", "/auth", tt.header)
			if w.Code != tt.status {
				t.Fatalf("status %d (%s), want %d", w.Code, strings.TrimSpace(w.Body.String()), tt.status)
			}
			if tt.status == 400 && s.authgear.Calls() != 0 {
				t.Error("a refused request cost a resolver call")
			}
		})
	}
}

// From an untrusted peer the original-request headers mean nothing, so a
// path in them is not judged either.
func TestAmbiguousPathFromUntrustedPeerIgnored(t *testing.T) {
	s := newStack(t, stackOptions{})
	w := s.do("GET", "/auth", hdr("X-Forwarded-Uri", "/public/..%2Fadmin", "Authorization", "Bearer "+aliceToken))
	if w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
}

func TestReturnURL(t *testing.T) {
	loginURL, _ := url.Parse("https://auth.example/login")
	c := LoginConfig{URL: loginURL, ReturnParam: "return_to", ReturnHosts: []string{"app.example", "*.apps.example", "dev.example:8443"}}
	tests := []struct {
		url, want string // want: the return URL, "" when refused
	}{
		{"https://app.example/page", "https://app.example/page"},
		{"https://evil.com@app.example/page", "https://app.example/page"},
		{"https://user:pw@app.example/page", "https://app.example/page"},
		{"https://app.example:443/page", "https://app.example:443/page"},
		{"http://app.example:80/page", "http://app.example:80/page"},
		{"https://app.example:8443/page", ""},
		{"http://app.example:443/page", ""},
		{"https://x.apps.example:9000/", ""},
		{"https://x.apps.example/", "https://x.apps.example/"},
		{"https://dev.example:8443/p", "https://dev.example:8443/p"},
		{"https://dev.example/p", ""},
		{"https://app.example.evil/p", ""},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		loc := c.location(u)
		var got string
		if loc != "" {
			l, _ := url.Parse(loc)
			got = l.Query().Get("return_to")
		}
		if got != tt.want {
			t.Errorf("%s: return URL %q, want %q", tt.url, got, tt.want)
		}
	}
}

func TestReadyzNamesNoAddress(t *testing.T) {
	s := newStack(t, stackOptions{redis: failingPinger{}})
	w := s.do("GET", "/readyz", nil)
	if w.Code != 503 {
		t.Fatalf("status %d", w.Code)
	}
	if strings.Contains(w.Body.String(), "10.1.2.3") || strings.Contains(w.Body.String(), "6379") {
		t.Errorf("/readyz shows the address: %q", w.Body.String())
	}
}

func TestUserIDBounds(t *testing.T) {
	for _, id := range []string{"0b6cbbd4-7a45-4ab4-b2c3-6ea8b6e8a001", "alice-0001", "a", strings.Repeat("a", 64)} {
		if !validUserID(id) {
			t.Errorf("%q refused", id)
		}
	}
	for _, id := range []string{"", strings.Repeat("a", 65), strings.Repeat("x", 300<<10), "a b", "a\nb", "{x}", "é"} {
		if validUserID(id) {
			t.Errorf("%q accepted", clip(id))
		}
	}
}

type failingPinger struct{}

func (failingPinger) Ping(context.Context) error {
	return errors.New("dial tcp 10.1.2.3:6379: connect: connection refused")
}

// FuzzAmbiguousTarget: the service's check and the README's regex agree on
// every target the regex is meant for, and nothing panics.
func FuzzAmbiguousTarget(f *testing.F) {
	for _, s := range []string{"/", "/admin", "/public/..%2Fadmin", "/a%C3%A9", "/x;y", "//", "/%zz", "/a?b=%2F"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		got := ambiguousTarget(target)
		if regexCovers(target) && got != readmeAmbiguousPath.MatchString(target) {
			t.Fatalf("%q: service %v, README regex %v", target, got, !got)
		}
	})
}

func TestTrustedPeerForms(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}
	for addr, want := range map[string]bool{
		"192.0.2.7:41000":            true,
		"192.0.2.7":                  true,
		"[2001:db8::1]:443":          true,
		"2001:db8::1":                true,
		"[::ffff:192.0.2.7]:80":      true, // v4-mapped
		"198.51.100.1:41000":         false,
		"[2001:db9::1]:443":          false,
		"":                           false,
		"garbage":                    false,
		"192.0.2.7:notaport":         true, // net/http never makes it; the address is still the gateway's
		"[192.0.2.7]:80":             true, // as net.SplitHostPort reads it
		"192.0.2.7.example.com:8080": false,
	} {
		r := httptest.NewRequest("GET", "/auth", nil)
		r.RemoteAddr = addr
		if got := trusted(r, proxies); got != want {
			t.Errorf("trusted(%q) = %v, want %v", addr, got, want)
		}
	}
}

// Through a real server the peer is judged once per connection
// (ConnContext), with the same answer as the per-request parse.
func TestConnContextTrust(t *testing.T) {
	for _, tc := range []struct {
		proxies []netip.Prefix
		want    int // an ambiguous original path: judged (400) only from a trusted peer
	}{
		{[]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}, 400},
		{[]netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, 200},
	} {
		s := newStack(t, stackOptions{trusted: tc.proxies})
		srv := httptest.NewUnstartedServer(s.handler)
		srv.Config.ConnContext = ConnContext(tc.proxies)
		srv.Start()
		req, _ := http.NewRequest("GET", srv.URL+"/auth", nil)
		req.Header.Set("Authorization", "Bearer "+aliceToken)
		req.Header.Set("X-Forwarded-Uri", "/public/..%2Fadmin")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		srv.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("proxies %v: status %d, want %d", tc.proxies, resp.StatusCode, tc.want)
		}
	}
}

// The connection's judgement is the one used: RemoteAddr is not parsed again.
func TestTrustedUsesConnContext(t *testing.T) {
	r := httptest.NewRequest("GET", "/auth", nil)
	r.RemoteAddr = "198.51.100.1:1234" // untrusted, were it parsed
	r = r.WithContext(ConnContext(gatewayPeers)(r.Context(), gatewayConn{}))
	if !trusted(r, gatewayPeers) {
		t.Error("the connection's trusted peer was not used")
	}
}
