package handler

import (
	"net/http"
	"net/url"
	"strings"
)

// LoginConfig sends browsers without a session to a sign-in page.
type LoginConfig struct {
	URL *url.URL // nil: no redirects, a plain 401
	// ReturnParam names the parameter carrying the original URL.
	ReturnParam string
	// ReturnHosts are the hosts a return URL may point at ("*.example.com"
	// for any subdomain): a login link can never send a user elsewhere.
	ReturnHosts []string
	// Signin, when set and URL is not, sends browsers to Authgear's
	// authorize endpoint instead (AUTHGEAR_CLIENT_ID). With both, URL is a
	// page of the operator's own, which may send the browser on through
	// /_forwardauth/sign_in?rd=.
	Signin *SigninConfig
}

// enabled reports whether browsers are sent anywhere to sign in.
func (c LoginConfig) enabled() bool { return c.URL != nil || c.Signin != nil }

// browserNavigation reports whether a person's browser is loading a page, as
// opposed to a script or an API client that must get a 401.
func browserNavigation(method string, h http.Header) bool {
	if method != http.MethodGet && method != http.MethodHead {
		return false
	}
	if strings.EqualFold(h.Get("X-Requested-With"), "XMLHttpRequest") {
		return false
	}
	if mode := h.Get("Sec-Fetch-Mode"); mode != "" && mode != "navigate" {
		return false
	}
	return strings.Contains(h.Get("Accept"), "text/html")
}

// location is the sign-in URL returning to u, or "" when u may not be
// returned to. The return URL never carries a userinfo part (a Host header
// such as "evil.com@app.example.com" would otherwise show the user a URL
// naming another site).
func (c LoginConfig) location(u *url.URL) string {
	if !c.enabled() || u == nil || (u.Scheme != "https" && u.Scheme != "http") || !c.ReturnAllowed(u) {
		return ""
	}
	ret := *u
	ret.User = nil
	if c.URL == nil {
		return c.Signin.authorize(&ret)
	}
	login := *c.URL
	q := login.Query()
	q.Set(c.ReturnParam, ret.String())
	login.RawQuery = q.Encode()
	return login.String()
}

// ReturnAllowed reports whether u's host, with its port, is one of
// ReturnHosts: an entry without a port admits only the scheme's default
// port, so a client naming another port in its Host header is not sent
// there.
func (c LoginConfig) ReturnAllowed(u *url.URL) bool {
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		port = ""
	}
	for _, entry := range c.ReturnHosts {
		h, p := splitHostPort(strings.ToLower(entry))
		if p != port {
			continue
		}
		if h == host {
			return true
		}
		if suffix, ok := strings.CutPrefix(h, "*"); ok && strings.HasPrefix(suffix, ".") && strings.HasSuffix(host, suffix) {
			return true
		}
	}
	return false
}

// splitHostPort splits "host[:port]" ("[v6]:port" too); the port is "" when
// there is none.
func splitHostPort(hostport string) (host, port string) {
	u := url.URL{Host: hostport}
	return u.Hostname(), u.Port()
}
