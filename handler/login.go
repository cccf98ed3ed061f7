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
}

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
	if c.URL == nil || u == nil || (u.Scheme != "https" && u.Scheme != "http") || !c.returnAllowed(u.Hostname()) {
		return ""
	}
	login := *c.URL
	q := login.Query()
	q.Set(c.ReturnParam, u.String())
	login.RawQuery = q.Encode()
	return login.String()
}

func (c LoginConfig) returnAllowed(host string) bool {
	host = strings.ToLower(host)
	for _, h := range c.ReturnHosts {
		h = strings.ToLower(h)
		if h == host {
			return true
		}
		if suffix, ok := strings.CutPrefix(h, "*"); ok && strings.HasPrefix(suffix, ".") && strings.HasSuffix(host, suffix) {
			return true
		}
	}
	return false
}
