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
	// Signin, when set (and URL is not), sends browsers to Authgear's
	// authorize endpoint instead (AUTHGEAR_CLIENT_ID).
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
// returned to.
func (c LoginConfig) location(u *url.URL) string {
	if !c.enabled() || u == nil || (u.Scheme != "https" && u.Scheme != "http") || !c.returnAllowed(u) {
		return ""
	}
	if c.URL == nil {
		return c.Signin.authorize(u)
	}
	login := *c.URL
	q := login.Query()
	q.Set(c.ReturnParam, u.String())
	login.RawQuery = q.Encode()
	return login.String()
}

// returnAllowed reports whether u may be returned to: no user info, and a
// host that ReturnHosts names, with its port when u has one ("host:port").
func (c LoginConfig) returnAllowed(u *url.URL) bool {
	if u.User != nil {
		return false
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	for _, h := range c.ReturnHosts {
		p := url.URL{Host: strings.ToLower(h)}
		if p.Port() != port {
			continue
		}
		name := p.Hostname()
		if name == host {
			return true
		}
		if suffix, ok := strings.CutPrefix(name, "*"); ok && strings.HasPrefix(suffix, ".") && strings.HasSuffix(host, suffix) {
			return true
		}
	}
	return false
}
