//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/authgear/authgear-forwardauth/resolver"
	"github.com/authgear/authgear-forwardauth/resolver/resolvertest"
)

// sessionAdmin is the admin's IdP session cookie (registered by the cases
// that use it).
var sessionAdmin = resolvertest.SessionToken("sessionCookieAdmin")

// knownCredentials: whose credential a value is, as the application would
// find out if it read the credential itself.
func knownCredential(v string) string {
	switch v {
	case tokenAlice, sessionAlice:
		return userAlice.UserID
	case tokenAdmin, sessionAdmin:
		return userAdmin.UserID
	case tokenAnon:
		return userAnon.UserID
	}
	return ""
}

// appCredentials lists the Authgear credentials the application received,
// in the order Authgear reads them (Bearer, then app_session,
// app_access_token, session), each cookie name's values in arrival order.
func appCredentials(v *cgiView) (bearers []string, cookies map[string][]string) {
	cookies = map[string][]string{}
	for _, f := range v.Fields {
		switch strings.ToLower(f.Name) {
		case "authorization":
			if scheme, tok, ok := strings.Cut(f.Value, " "); ok && strings.EqualFold(scheme, "Bearer") {
				bearers = append(bearers, strings.TrimSpace(tok))
			}
		case "cookie":
			for _, part := range strings.Split(f.Value, ";") {
				name, value, ok := strings.Cut(part, "=")
				if !ok {
					continue
				}
				name = strings.TrimSpace(name)
				cookies[name] = append(cookies[name], strings.Trim(strings.TrimSpace(value), `"`))
			}
		}
	}
	return bearers, cookies
}

// credentialReadings are the users an application reading the credentials
// itself could take the request for: Authgear's own reading (the first
// Bearer, else the first valid cookie of each name in its order) and a
// last-wins reading of repeated names (Django, Rack's parse_cookie).
func credentialReadings(v *cgiView) (first, last string) {
	bearers, cookies := appCredentials(v)
	pick := func(vals []string, lastWins bool) string {
		// Values net/http would not parse are skipped, as Authgear does.
		vals = slices.DeleteFunc(slices.Clone(vals), func(v string) bool { return v == "" || strings.ContainsAny(v, "\\\";") })
		if len(vals) == 0 {
			return ""
		}
		if lastWins {
			return vals[len(vals)-1]
		}
		return vals[0]
	}
	read := func(lastWins bool) string {
		if b := pick(bearers, lastWins); b != "" {
			return knownCredential(b)
		}
		for _, n := range []string{"app_session", "app_access_token", "session"} {
			if c := pick(cookies[n], lastWins); c != "" {
				if u := knownCredential(c); u != "" {
					return u
				}
			}
		}
		return ""
	}
	return read(false), read(true)
}

// expectCredentialsAgree checks that the credentials the application
// received, read as Authgear reads them, name the user the identity headers
// name, when they name one: the gateway must not show the service one set
// of credentials and the application another. A credential passed on with
// no identity, and a last-wins reading that differs, are logged.
func expectCredentialsAgree(t *testing.T, r rawResult) {
	t.Helper()
	for _, v := range r.views {
		user := strings.Join(v.Env[cgiName(resolver.HeaderUserID)], ",")
		first, last := credentialReadings(v)
		switch {
		case first != "" && user != "" && first != user:
			t.Errorf("the identity headers say user %q, the credentials the application received (read as Authgear reads them) are %q's: %s", user, first, r)
		case first != user:
			// On an optional route an unusable credential (two Authorization
			// headers, an unknown token) is passed on with no identity: the
			// client holds it anyway.
			t.Logf("note: the application received %q's credentials with the identity headers naming %q", first, user)
		}
		if last != first {
			t.Logf("note: an application taking the last of repeated credentials (Django, Rack) reads user %q; the identity headers say %q", last, user)
		}
	}
}

// expectRefusedOrIdentity: the request is refused, or reaches the
// application with exactly the identity the service gave.
func expectRefusedOrIdentity(t *testing.T, r rawResult, want *resolver.Identity) {
	t.Helper()
	if !r.reached() {
		if r.status != 0 && r.status < 400 && !isLoginRedirect(r) {
			t.Errorf("status %d without reaching the application", r.status)
		}
		return
	}
	expectIdentityCGI(t, r, want)
}

// expectAppRoute is expectRoute for requests a gateway may not serve at
// all: whatever its answer (Caddy answers an empty 200 for a host it has
// no site for), only what reached the application matters.
func expectAppRoute(t *testing.T, r rawResult, c credential) {
	t.Helper()
	for _, v := range r.views {
		if !c.permitted(v.Route) {
			t.Errorf("the application would serve its %s route (reading %q of %q) to a request that may not enter it: %s",
				v.Route, v.Reading, v.Target, r)
		}
	}
}

// identityNames is every identity header and the assertion, for
// Connection headers.
func identityNames() string {
	return strings.Join(append(resolver.IdentityHeaders(), headerAssertion), ", ")
}

// pathOverrides are request headers some frameworks take as the request's
// path instead of the request line: IIS's URL Rewrite and ISAPI_Rewrite set
// X-Original-URL and X-Rewrite-URL, and Symfony (before CVE-2018-14773),
// Zend Framework 1 and 2 (before ZF2018-01, so Magento 1) and Laminas'
// predecessors route by them.
var pathOverrides = []string{"HTTP_X_ORIGINAL_URL", "HTTP_X_REWRITE_URL"}

func moreHostileCases() []hostileCase {
	var cs []hostileCase
	add := func(name string, run func(t *testing.T, h *hostileEnv)) {
		cs = append(cs, hostileCase{name, run})
	}

	// --- hop-by-hop abuse: a client naming headers in Connection, which a
	// proxy removes before forwarding. The gateway sets the identity headers
	// and the description of the original request itself: naming them must
	// not take them away from the application or from the service.
	for _, sc := range []struct {
		name, target string
		cred         credential
		want         *resolver.Identity
	}{
		{"allow", "/hello", credAlice, &userAlice},
		{"allow admin", "/admin/panel", credAdmin, &userAdmin},
	} {
		add("hop-by-hop/Connection names the identity headers/"+sc.name, func(t *testing.T, h *hostileEnv) {
			r := h.send(t, rawRequest{method: "GET", target: sc.target, fields: sc.cred.fields(), connection: "close, " + identityNames()})
			expectRefusedOrIdentity(t, r, sc.want)
		})
		add("hop-by-hop/second Connection header names the identity headers/"+sc.name, func(t *testing.T, h *hostileEnv) {
			r := h.send(t, rawRequest{method: "GET", target: sc.target, fields: sc.cred.fields(), lines: []string{"Connection: " + identityNames()}})
			expectRefusedOrIdentity(t, r, sc.want)
		})
	}
	originals := "close, X-Forwarded-Uri, X-Forwarded-Method, X-Forwarded-Host, X-Forwarded-Proto, X-Original-URI, X-Original-URL, X-Original-Method, X-Forwarded-For"
	for _, p := range []string{"/public/..%2fadmin", "/public/%2e%2e/admin/panel", "/public/..;/admin", "/public//../admin", `/public/..\admin`, "/%61dmin/panel", "/public/..%252fadmin"} {
		for _, cred := range []credential{credNone, credAlice} {
			add("hop-by-hop/Connection names the original-request headers/"+p+"/"+[]string{"no credential", "signed in"}[cred], func(t *testing.T, h *hostileEnv) {
				r := h.send(t, rawRequest{method: "GET", target: p, fields: cred.fields(), connection: originals})
				expectRoute(t, r, cred)
			})
		}
	}
	add("hop-by-hop/Connection: Authorization on a protected route", func(t *testing.T, h *hostileEnv) {
		r := h.send(t, rawRequest{method: "GET", target: "/admin/panel", fields: credAdmin.fields(), connection: "close, Authorization"})
		expectRefusedOrIdentity(t, r, &userAdmin)
		expectCredentialsAgree(t, r)
	})
	add("hop-by-hop/Connection: Authorization on the optional route", func(t *testing.T, h *hostileEnv) {
		r := h.send(t, rawRequest{method: "GET", target: "/public/page", fields: credAdmin.fields(), connection: "close, Authorization"})
		expectCredentialsAgree(t, r)
	})
	add("hop-by-hop/Connection: Cookie on the optional route", func(t *testing.T, h *hostileEnv) {
		r := h.send(t, rawRequest{method: "GET", target: "/public/page", fields: hdr("Cookie", "session="+sessionAlice), connection: "close, Cookie"})
		expectCredentialsAgree(t, r)
	})
	add("hop-by-hop/Connection names what makes a look-alike no preflight", func(t *testing.T, h *hostileEnv) {
		r := h.send(t, rawRequest{method: "OPTIONS", target: "/admin/panel", connection: "close, Content-Type, X-HTTP-Method-Override, Content-Length",
			fields: hdr("Origin", "https://other.example", "Access-Control-Request-Method", "POST", "Content-Type", "text/plain", "X-HTTP-Method-Override", "DELETE")})
		for _, v := range r.views {
			if bad := notAPreflight(v); bad != "" {
				t.Errorf("reached the application without a credential, %s: %s", bad, r)
			}
		}
	})
	for _, target := range []string{"/admin/panel", "/hello"} {
		add("hop-by-hop/websocket upgrade without a credential"+target, func(t *testing.T, h *hostileEnv) {
			r := h.send(t, rawRequest{method: "GET", target: target, connection: "Upgrade",
				fields: hdr("Upgrade", "websocket", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version", "13", "Origin", "https://other.example")})
			expectRefused(t, r)
		})
		add("hop-by-hop/h2c upgrade without a credential"+target, func(t *testing.T, h *hostileEnv) {
			r := h.send(t, rawRequest{method: "GET", target: target, connection: "Upgrade, HTTP2-Settings",
				fields: hdr("Upgrade", "h2c", "HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA")})
			expectRefused(t, r)
		})
		add("hop-by-hop/Expect 100-continue with a body, no credential"+target, func(t *testing.T, h *hostileEnv) {
			r := h.send(t, rawRequest{method: "POST", target: target, fields: hdr("Expect", "100-continue", "Content-Type", "text/plain"), body: "cmd=drop"})
			expectRefused(t, r)
		})
	}
	// A WebSocket upgrade still reaches the application as one, with the
	// whole identity even when Connection names identity headers too.
	for _, conn := range []string{"Upgrade", "keep-alive, Upgrade, X-Authgear-User-Anonymous, X-Authgear-Session-Valid"} {
		add("hop-by-hop/websocket upgrade, signed in/Connection: "+conn, func(t *testing.T, h *hostileEnv) {
			r := h.send(t, rawRequest{method: "GET", target: "/hello", connection: conn,
				fields: joinFields(credAlice.fields(), hdr("Upgrade", "websocket", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version", "13"))})
			v := expectReached(t, r)
			switch up := v.Env["HTTP_UPGRADE"]; {
			case h.gw == "nginx" && len(up) == 0:
				// The nginx recipe does not pass upgrades on (no
				// proxy_set_header Upgrade): no WebSockets there.
				t.Logf("nginx passes no Upgrade on")
			case len(up) != 1 || !strings.EqualFold(up[0], "websocket"):
				t.Errorf("the application saw Upgrade %q, want websocket", up)
			}
			expectIdentityCGI(t, r, &userAlice)
		})
	}
	add("hop-by-hop/h2c upgrade on the optional route", func(t *testing.T, h *hostileEnv) {
		r := h.send(t, rawRequest{method: "GET", target: "/public/page", connection: "Upgrade, HTTP2-Settings",
			fields: hdr("Upgrade", "h2c", "HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA")})
		if r.status == http.StatusSwitchingProtocols {
			t.Errorf("the gateway switched to h2c: what follows on the connection is no longer checked: %s", r)
		}
		expectIdentityCGI(t, r, nil)
	})

	// --- request lines and Host ----------------------------------------------
	for _, sc := range []struct {
		name string
		rr   rawRequest
		cred credential
	}{
		{"HTTP/1.0 without Host", rawRequest{method: "GET", target: "/admin/panel", proto: "HTTP/1.0", host: "-"}, credNone},
		{"HTTP/1.0 without Host, signed in", rawRequest{method: "GET", target: "/admin/panel", proto: "HTTP/1.0", host: "-", fields: credAlice.fields()}, credAlice},
		{"HTTP/1.0", rawRequest{method: "GET", target: "/admin/panel", proto: "HTTP/1.0", fields: credAlice.fields()}, credAlice},
		{"HTTP/0.9-style", rawRequest{method: "GET", target: "/admin/panel", proto: "HTTP/0.9", fields: credAlice.fields()}, credAlice},
		{"absolute form, another authority", rawRequest{method: "GET", target: "http://other.example/admin/panel", fields: credAlice.fields()}, credAlice},
		{"absolute form, the app's authority, another Host", rawRequest{method: "GET", target: "http://app.example.com/admin/panel", host: "other.example", fields: credAlice.fields()}, credAlice},
		{"absolute form, https", rawRequest{method: "GET", target: "https://app.example.com/Admin/panel", fields: credAlice.fields()}, credAlice},
		{"Host with a trailing dot", rawRequest{method: "GET", target: "/admin/panel", host: appHost + ".", fields: credAlice.fields()}, credAlice},
		{"Host in upper case", rawRequest{method: "GET", target: "/admin/panel", host: strings.ToUpper(appHost), fields: credAlice.fields()}, credAlice},
		{"Host with the default port", rawRequest{method: "GET", target: "/admin/panel", host: appHost + ":80", fields: credAlice.fields()}, credAlice},
		{"two Host headers", rawRequest{method: "GET", target: "/admin/panel", fields: joinFields(hdr("Host", "other.example"), credAlice.fields())}, credAlice},
		{"two Host headers, no credential", rawRequest{method: "GET", target: "/admin/panel", fields: hdr("Host", "other.example")}, credNone},
		{"fragment after a dot segment", rawRequest{method: "GET", target: "/public/x#/../../admin/panel"}, credNone},
		{"fragment, then a dot segment", rawRequest{method: "GET", target: "/public#/../admin"}, credNone},
		{"fragment in the admin prefix", rawRequest{method: "GET", target: "/public/..#/admin"}, credNone},
		{"encoded fragment", rawRequest{method: "GET", target: "/public/x%23/../../admin"}, credNone},
		{"encoded fragment after a dot segment", rawRequest{method: "GET", target: "/public/..%23/admin"}, credNone},
		{"encoded question mark after a dot segment", rawRequest{method: "GET", target: "/public/..%3F/admin"}, credNone},
		{"encoded question mark after a dot segment, lower case", rawRequest{method: "GET", target: "/public/..%3fx"}, credNone},
		{"fragment after a dot segment at the end", rawRequest{method: "GET", target: "/public/..#"}, credNone},
		{"lower-case method", rawRequest{method: "get", target: "/admin/panel"}, credNone},
		{"lower-case method, signed in", rawRequest{method: "get", target: "/admin/panel", fields: credAlice.fields()}, credAlice},
		{"PROPFIND", rawRequest{method: "PROPFIND", target: "/admin/panel", fields: hdr("Depth", "1")}, credNone},
		{"unknown method", rawRequest{method: "FOO", target: "/admin/panel"}, credNone},
		{"TRACE", rawRequest{method: "TRACE", target: "/admin/panel"}, credNone},
		{"CONNECT to the app's authority", rawRequest{method: "CONNECT", target: appHost + ":80"}, credNone},
		{"CONNECT with a path", rawRequest{method: "CONNECT", target: "/admin/panel"}, credNone},
		{"NUL in a header value", rawRequest{method: "GET", target: "/admin/panel", fields: credAlice.fields(), lines: []string{"X-Note: a\x00b"}}, credAlice},
		{"bare CR in a header value", rawRequest{method: "GET", target: "/admin/panel", fields: credAlice.fields(), lines: []string{"X-Note: a\rX-Authgear-User-Roles: admin"}}, credAlice},
		{"bare LF line ends", rawRequest{method: "GET", target: "/admin/panel", fields: credAlice.fields(), lines: []string{"X-Note: a\nX-Authgear-User-Roles: admin"}}, credAlice},
	} {
		add("request/"+sc.name, func(t *testing.T, h *hostileEnv) {
			r := h.send(t, sc.rr)
			expectAppRoute(t, r, sc.cred)
			want := map[credential]*resolver.Identity{credNone: nil, credAlice: &userAlice}[sc.cred]
			if r.reached() && r.views[0].Route == routePublic {
				want = nil
			}
			expectIdentityCGI(t, r, want)
		})
	}
	for _, target := range []string{"http://evil.example/page", "http://evil.example:8443/page"} {
		add("return url/absolute form, another authority/"+target, func(t *testing.T, h *hostileEnv) {
			r := h.send(t, rawRequest{method: "GET", target: target, fields: hdr("Accept", acceptHTML)})
			expectAppRoute(t, r, credNone)
			expectSafeReturn(t, r)
		})
	}
	add("return url/two Host headers", func(t *testing.T, h *hostileEnv) {
		r := h.send(t, rawRequest{method: "GET", target: "/page", fields: hdr("Host", "evil.example", "Accept", acceptHTML)})
		expectAppRoute(t, r, credNone)
		expectSafeReturn(t, r)
	})

	// --- credentials: which user the service decides on, and which the
	// application could read from what it receives.
	cookie := func(vs ...string) []field {
		var fs []field
		for _, v := range vs {
			fs = append(fs, field{"Cookie", v})
		}
		return fs
	}
	for _, sc := range []struct {
		name   string
		target string
		fields []field
		want   *resolver.Identity // nil: refused or nobody
	}{
		{"two Authorization headers, admin last", "/admin/panel", hdr("Authorization", "Bearer "+tokenAlice, "Authorization", "Bearer "+tokenAdmin), nil},
		{"two Authorization headers, admin first", "/admin/panel", hdr("Authorization", "Bearer "+tokenAdmin, "Authorization", "Bearer "+tokenAlice), nil},
		{"two Authorization headers on the optional route", "/public/page", hdr("Authorization", "Bearer "+tokenAlice, "Authorization", "Bearer "+tokenAdmin), nil},
		{"Authorization with two tokens in one header", "/admin/panel", hdr("Authorization", "Bearer "+tokenAlice+", Bearer "+tokenAdmin), nil},
		{"Bearer of one user, session cookie of another", "/admin/panel", joinFields(credAlice.fields(), cookie("session="+sessionAdmin)), nil},
		{"Bearer of the admin, session cookie of another", "/admin/panel", joinFields(credAdmin.fields(), cookie("session="+sessionAlice)), &userAdmin},
		{"two Cookie headers", "/hello", cookie("session="+sessionAlice, "session="+sessionAdmin), &userAlice},
		{"two Cookie headers, admin first", "/admin/panel", cookie("session="+sessionAdmin, "session="+sessionAlice), &userAdmin},
		{"two Cookie headers on the admin route, admin last", "/admin/panel", cookie("session="+sessionAlice, "session="+sessionAdmin), nil},
		{"repeated cookie in one header", "/hello", cookie("session=" + sessionAlice + "; session=" + sessionAdmin), &userAlice},
		{"repeated cookie, invalid first", "/admin/panel", cookie(`session=bad\value; session=` + sessionAdmin), &userAdmin},
		{"cookie name in another case", "/hello", cookie("Session=" + sessionAlice), nil},
		{"cookie name in another case on the optional route", "/public/page", cookie("Session=" + sessionAlice), nil},
		{"quoted cookie", "/hello", cookie(`session="` + sessionAlice + `"`), &userAlice},
		{"cookie with spaces around the name", "/hello", cookie(" session =" + sessionAlice), &userAlice},
		{"Authorization scheme in lower case", "/hello", hdr("Authorization", "bearer "+tokenAlice), &userAlice},
	} {
		add("credentials/"+sc.name, func(t *testing.T, h *hostileEnv) {
			h.st.authgear.AddSession(resolvertest.Session, sessionAdmin, userAdmin.UserID)
			r := h.send(t, rawRequest{method: "GET", target: sc.target, fields: sc.fields})
			switch {
			case sc.want == nil && sc.target != "/public/page":
				expectRefused(t, r)
			case sc.want != nil && !r.reached():
				t.Errorf("want the application to serve %s: %s", sc.want.UserID, r)
			}
			if r.reached() {
				want := sc.want
				if sc.target == "/public/page" && r.views[0].Env[cgiName(resolver.HeaderUserID)] == nil {
					want = nil
				}
				expectIdentityCGI(t, r, want)
			}
			expectCredentialsAgree(t, r)
		})
	}

	add("credentials/Authorization folded", func(t *testing.T, h *hostileEnv) {
		r := h.send(t, rawRequest{method: "GET", target: "/hello", lines: []string{"Authorization: Bearer", " " + tokenAlice}})
		expectRefusedOrIdentity(t, r, &userAlice)
		expectCredentialsAgree(t, r)
	})

	// --- sizes near the gateways' limits: whatever a gateway cannot pass to
	// the service must not reach the application.
	big := func(n int) string { return strings.Repeat("a", n) }
	for _, sc := range []struct {
		name string
		rr   rawRequest
		cred credential
	}{
		{"long URL", rawRequest{method: "GET", target: "/admin/panel?q=" + big(7800)}, credNone},
		{"longer URL", rawRequest{method: "GET", target: "/admin/panel?q=" + big(70000)}, credNone},
		{"long URL, signed in", rawRequest{method: "GET", target: "/hello?q=" + big(7800), fields: credAlice.fields()}, credAlice},
		{"long cookie before the session", rawRequest{method: "GET", target: "/admin/panel", fields: cookie("pad="+big(7900), "session="+sessionAlice)}, credAlice},
		{"cookies past the service's header limit", rawRequest{method: "GET", target: "/hello", fields: cookie("pad1="+big(7900), "pad2="+big(7900), "pad3="+big(7900), "pad4="+big(7900), "pad5="+big(7900), "pad6="+big(7900), "pad7="+big(7900), "pad8="+big(7900), "pad9="+big(7900), "session="+sessionAlice)}, credAlice},
		{"many header lines", rawRequest{method: "GET", target: "/hello", fields: credAlice.fields(), lines: func() []string {
			var ls []string
			for i := range 90 {
				ls = append(ls, fmt.Sprintf("X-Pad-%d: %d", i, i))
			}
			return ls
		}()}, credAlice},
		{"many header lines, admin route", rawRequest{method: "GET", target: "/admin/panel", fields: credAdmin.fields(), lines: func() []string {
			var ls []string
			for i := range 95 {
				ls = append(ls, fmt.Sprintf("X-Pad-%d: %d", i, i))
			}
			return ls
		}()}, credAdmin},
	} {
		add("size/"+sc.name, func(t *testing.T, h *hostileEnv) {
			r := h.send(t, sc.rr)
			expectRoute(t, r, sc.cred)
			want := map[credential]*resolver.Identity{credNone: nil, credAlice: &userAlice, credAdmin: &userAdmin}[sc.cred]
			expectRefusedOrIdentity(t, r, want)
		})
	}

	// HAProxy 2.6's HTTP client crashed the process (SIGSEGV) on a call
	// with more header lines than tune.http.maxhdr: no credential needed.
	for _, n := range []int{96, 97, 98} {
		add(fmt.Sprintf("size/the gateway survives %d header lines", n), func(t *testing.T, h *hostileEnv) {
			var ls []string
			for i := range n {
				ls = append(ls, fmt.Sprintf("X-Pad-%d: %d", i, i))
			}
			r := h.send(t, rawRequest{method: "GET", target: "/admin/panel", lines: ls})
			expectRefused(t, r)
			expectReached(t, h.send(t, rawRequest{method: "GET", target: "/public/page"}))
		})
	}

	// --- headers frameworks take as the request's path.
	for _, sc := range []struct {
		name  string
		lines []string
	}{
		{"X-Original-URL", []string{"X-Original-URL: /admin/panel"}},
		{"X-Rewrite-URL", []string{"X-Rewrite-URL: /admin/panel"}},
		{"lower case", []string{"x-original-url: /admin/panel", "x-rewrite-url: /admin/panel"}},
		{"absolute", []string{"X-Original-URL: http://app.example.com/admin/panel"}},
		{"underscores", []string{"X_Original_URL: /admin/panel", "X_Rewrite_URL: /admin/panel"}},
		{"dots", []string{"X.Original.URL: /admin/panel"}},
		{"mixed separators", []string{"X-Original_URL: /admin/panel", "x_rewrite-url: /admin/panel"}},
	} {
		for _, target := range []string{"/public/page", "/hello"} {
			cred := credNone
			if target == "/hello" {
				cred = credAlice
			}
			add("path override/"+sc.name+target, func(t *testing.T, h *hostileEnv) {
				r := h.send(t, rawRequest{method: "GET", target: target, fields: cred.fields(), lines: sc.lines})
				// Every recipe removes these headers, in every spelling.
				expectReached(t, r)
				for _, v := range r.views {
					for _, name := range pathOverrides {
						if got := v.Env[name]; len(got) > 0 {
							t.Errorf("the application received %s=%q", name, got)
						}
					}
				}
			})
		}
	}
	return cs
}
