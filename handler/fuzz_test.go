package handler

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/authgear/authgear-forwardauth/resolver"
)

// FuzzReadCredentials: whatever the headers, reading them never panics, and
// what it forwards is only well-formed Authgear credentials.
func FuzzReadCredentials(f *testing.F) {
	f.Add("Bearer abc.def.ghi", "session=s1; app_session=a1; other=x")
	f.Add("bearer  tok", "app_access_token=\"quoted\"")
	f.Add("Basic dXNlcjpwYXNz", "session=a\\b; session=ok")
	f.Add("Bearer", ";;;=;session=;x")
	f.Add("Bearer \xff\xfe", "session=\x00")
	f.Fuzz(func(t *testing.T, authorization, cookie string) {
		h := http.Header{"Authorization": {authorization}, "Cookie": {cookie}}
		c, _, err := readCredentials(h, newCookieNames("p_"))
		if err != nil {
			if !c.Empty() && c.Bearer != "" {
				t.Fatalf("a malformed credential was kept: %+v", c)
			}
			return
		}
		if c.Bearer != "" && !validToken(c.Bearer) {
			t.Fatalf("bearer %q forwarded", c.Bearer)
		}
		for _, v := range []string{c.AppSession, c.AppAccessToken, c.Session} {
			if v == "" {
				continue
			}
			if _, ok := cookieValue(v); !ok || strings.ContainsAny(v, ";\r\n\"\\") || !utf8.ValidString(v) {
				t.Fatalf("cookie value %q forwarded", v)
			}
		}
	})
}

// FuzzOriginalRequest: the gateway headers of a trusted peer never panic,
// and a return URL is always absolute http(s).
func FuzzOriginalRequest(f *testing.F) {
	f.Add("GET", "/a?b=c", "https://app.example/a", "GET", "https", "app.example", "/x?y")
	f.Add("", "", "", "OPTIONS", "http", "h:80", "/")
	f.Add("GET", "//evil", "javascript:alert(1)", "", "", "", "")
	f.Add("\x00", "\xff", "http://[::1", "GET", "ftp", "a b", "relative")
	f.Fuzz(func(t *testing.T, om, ouri, ourl, fm, fproto, fhost, furi string) {
		h := http.Header{}
		for k, v := range map[string]string{
			"X-Original-Method": om, "X-Original-Uri": ouri, "X-Original-Url": ourl,
			"X-Forwarded-Method": fm, "X-Forwarded-Proto": fproto, "X-Forwarded-Host": fhost, "X-Forwarded-Uri": furi,
		} {
			if v != "" {
				h.Set(k, v)
			}
		}
		o := readOriginal(h)
		if o.url != nil && (!o.url.IsAbs() || (o.url.Scheme != "http" && o.url.Scheme != "https") || o.url.Host == "") {
			t.Fatalf("original URL %q is not absolute http(s)", o.url)
		}
		_ = originalQuery(h)
	})
}

// FuzzPolicy: any auth-URL query either parses or is refused; a refused one
// is a 500 through /auth, never an allow.
func FuzzPolicy(f *testing.F) {
	f.Add("roles=admin,editor&require_verified", "")
	f.Add("optional&roles=a", "optional")
	f.Add("allow_anonymous=false&x=1", "x=1")
	f.Add("%zz", "")
	f.Add("roles=&roles=", "roles=")
	var ps policies
	f.Fuzz(func(t *testing.T, query, originalQ string) {
		rp, err := ps.routePolicies(query, originalQ)
		if err != nil {
			return
		}
		if rp.n < 1 || rp.n > 2 {
			t.Fatalf("%d policies", rp.n)
		}
		// A route that requires a role admits nobody without it.
		for _, p := range rp.p[:rp.n] {
			if len(p.roles) > 0 && rp.permits(resolver.Identity{UserID: "u"}) {
				t.Fatalf("query %q admits a user without roles", query)
			}
		}
	})
}

// FuzzAuth runs whole requests through /auth with a fake Authgear: never a
// panic, never a 2xx for a request without a valid credential or an
// optional route.
func FuzzAuth(f *testing.F) {
	f.Add("roles=admin", "Bearer alice-token", "session=x", "GET", "/a")
	f.Add("optional", "", "", "OPTIONS", "/")
	f.Add("", "Bearer \x00", "session=\xff", "", "")
	s := newStack(f, stackOptions{trusted: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, preflight: true})
	f.Fuzz(func(t *testing.T, query, authorization, cookie, method, uri string) {
		r := httptest.NewRequest("GET", "/auth", nil)
		r.URL.RawQuery = query
		for k, v := range map[string]string{"Authorization": authorization, "Cookie": cookie, "X-Forwarded-Method": method, "X-Forwarded-Uri": uri} {
			if v != "" {
				r.Header.Set(k, v)
			}
		}
		w := httptest.NewRecorder()
		s.handler.ServeHTTP(w, r)
		if w.Code != 200 {
			return
		}
		valid := strings.Contains(authorization, "alice-token") || strings.Contains(authorization, "bob-token") ||
			strings.Contains(authorization, "anon-token") || strings.Contains(cookie, "alice-") || strings.Contains(cookie, "bob-idp")
		if !valid && w.Header().Get("X-Authgear-User-Id") != "" {
			t.Fatalf("an identity without a valid credential: %q %q", authorization, cookie)
		}
	})
}
