package handler

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
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
		c, _, _, err := readCredentials(h, newCookieNames("p_"), nil)
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

// FuzzCredentialShapes: with CREDENTIAL_SHAPES=authgear, whatever the
// headers, only credentials of Authgear's shapes are kept (checked against a
// plain re-statement of them), a remembered JWT header never changes an
// answer, and a dropped credential is always reported.
func FuzzCredentialShapes(f *testing.F) {
	f.Add("Bearer "+aliceToken, "session="+aliceIDP+"; app_session="+aliceApp)
	f.Add("Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6ImsiLCJ0eXAiOiJhdCtqd3QifQ.e30.c2ln", "app_access_token=eyJhbGciOiJSUzI1NiIsImtpZCI6ImsiLCJ0eXAiOiJhdCtqd3QifQ.e30.c2ln")
	f.Add("Bearer eyJhbGciOiJIUzI1NiIsImtpZCI6ImsiLCJ0eXAiOiJhdCtqd3QifQ.e30.c2ln", "session=0b6cbbd4-7a45-4ab4-b2c3-6ea8b6e8a001.aB3aB3aB3aB3aB3aB3aB3aB3aB3aB3aB")
	f.Add("Bearer "+strings.Repeat("é", 16), "session=x.y; app_session="+alnum(33))
	f.Add("bearer  "+alnum(31)+" ", "app_session=\""+alnum(32)+"\"")
	var warm resolver.Shapes
	f.Fuzz(func(t *testing.T, authorization, cookie string) {
		h := http.Header{"Authorization": {authorization}, "Cookie": {cookie}}
		c, _, misshapen, err := readCredentials(h, newCookieNames(""), &warm)
		c2, _, misshapen2, err2 := readCredentials(h, newCookieNames(""), &resolver.Shapes{})
		if c != c2 || misshapen != misshapen2 || (err == nil) != (err2 == nil) {
			t.Fatalf("remembered headers changed the answer: %+v %v, fresh %+v %v", c, misshapen, c2, misshapen2)
		}
		if err != nil {
			return
		}
		if c.Bearer != "" && !opaqueRef(c.Bearer) && !jwtRef(c.Bearer) {
			t.Fatalf("bearer %q kept", c.Bearer)
		}
		if c.AppSession != "" && !opaqueRef(c.AppSession) {
			t.Fatalf("app_session %q kept", c.AppSession)
		}
		if c.AppAccessToken != "" && !opaqueRef(c.AppAccessToken) && !jwtRef(c.AppAccessToken) {
			t.Fatalf("app_access_token %q kept", c.AppAccessToken)
		}
		if c.Session != "" && !sessionRef.MatchString(c.Session) {
			t.Fatalf("session %q kept", c.Session)
		}
		all, _, _, _ := readCredentials(h, newCookieNames(""), nil)
		if all != c && !misshapen {
			t.Fatalf("dropped %+v without saying so (kept %+v)", all, c)
		}
	})
}

var (
	opaqueRE   = regexp.MustCompile(`^[A-Za-z0-9]{32}$`)
	sessionRef = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\.[A-Za-z0-9]{32}$`)
	jwtRE      = regexp.MustCompile(`^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`)
)

func opaqueRef(v string) bool { return opaqueRE.MatchString(v) }

// jwtRef: three base64url segments whose header is a JSON object saying alg
// RS256, typ at+jwt and a kid.
func jwtRef(v string) bool {
	if len(v) > resolver.MaxJWTSize || !jwtRE.MatchString(v) {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(v[:strings.IndexByte(v, '.')])
	if err != nil {
		return false
	}
	var h map[string]any
	if json.Unmarshal(raw, &h) != nil {
		return false
	}
	typ, _ := h["typ"].(string)
	kid, _ := h["kid"].(string)
	return h["alg"] == "RS256" && (strings.EqualFold(typ, "at+jwt") || strings.EqualFold(typ, "application/at+jwt")) && kid != ""
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
		_ = originalQuery(h.Get("X-Forwarded-Uri"))
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
	f.Add("preflight_only", "")
	var ps policies
	f.Fuzz(func(t *testing.T, query, originalQ string) {
		rp, err := ps.routePolicies(query, originalQ)
		if err != nil {
			return
		}
		if rp.n < 1 || rp.n > 2 {
			t.Fatalf("%d policies", rp.n)
		}
		// A location for preflights alone is one whatever the client adds.
		if p, err := parsePolicy(query); err == nil && p.preflightOnly && !rp.preflightOnly() {
			t.Fatalf("query %q lost preflight_only", query)
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
	f.Add("roles=admin", "Bearer "+aliceToken, "session=x", "GET", "/a")
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
		valid := strings.Contains(authorization, aliceToken) || strings.Contains(authorization, bobToken) ||
			strings.Contains(authorization, anonToken) || strings.Contains(cookie, aliceIDP) || strings.Contains(cookie, aliceApp) ||
			strings.Contains(cookie, aliceAccess) || strings.Contains(cookie, bobIDP)
		if !valid && w.Header().Get("X-Authgear-User-Id") != "" {
			t.Fatalf("an identity without a valid credential: %q %q", authorization, cookie)
		}
	})
}
