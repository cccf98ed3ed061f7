package handler

import (
	"log/slog"
	"net/http"
	"net/netip"
	"strings"

	"github.com/authgear/authgear-forwardauth/resolver"
)

// HeaderJWTAssertion carries a signed, short-lived JWT of the identity to
// the upstream (ASSERTION_KEYS_FILE).
const HeaderJWTAssertion = "X-Authgear-Jwt-Assertion"

// Asserter signs the identity of an allow for one audience, the host of the
// original request. It returns the header value (shared between responses,
// never modified), or nil when there is nothing to assert.
type Asserter interface {
	Assertion(d *resolver.Decision, audience string) ([]string, error)
}

// maxHostLen bounds an audience: a DNS name and a port.
const maxHostLen = 261

// newAssert returns what an allow calls when assertions are on: the header
// value to set (empty when the original host is unknown, or told by a peer
// that may not describe the original request: no token bound to a made-up
// audience), or nil after answering 500 because signing failed.
func newAssert(cfg AuthConfig, logger *slog.Logger) func(w http.ResponseWriter, r *http.Request, h *requestHeaders, d *resolver.Decision) []string {
	return func(w http.ResponseWriter, r *http.Request, h *requestHeaders, d *resolver.Decision) []string {
		aud := h.originalHost()
		if aud != "" && !trusted(r, cfg.TrustedProxies) {
			aud = ""
		}
		if aud == "" {
			return emptyValue
		}
		v, err := cfg.Assertion.Assertion(d, aud)
		if err != nil {
			logger.LogAttrs(r.Context(), slog.LevelError, "could not sign the assertion", slog.String("error", err.Error()))
			http.Error(w, "could not sign the identity assertion", http.StatusInternalServerError)
			return nil
		}
		if v == nil {
			return emptyValue
		}
		return v
	}
}

// setNoIdentityNorAssertion is setNoIdentity with the assertion header
// empty too, when assertions are on.
func setNoIdentityNorAssertion(h http.Header) {
	setNoIdentity(h)
	h[HeaderJWTAssertion] = emptyValue
}

// originalHost is the host of the original request, lowercased, as
// readOriginal reads it, without allocating (unless the host has capitals);
// "" when unknown, ambiguous or not a plain host[:port]. It never returns a
// host other than readOriginal's (a test holds it to that).
func (v *requestHeaders) originalHost() string {
	xOrigURL, xOrigURI := first(v.xOriginalURL), first(v.xOriginalURI)
	nginx := xOrigURL != "" || xOrigURI != "" || first(v.xOriginalMethod) != ""
	xFwdURI := first(v.xForwardedURI)
	forwarded := xFwdURI != "" || first(v.xForwardedMethod) != ""
	switch {
	case nginx && forwarded:
		return ""
	case nginx:
		if host, ok := urlHost(xOrigURL); ok {
			return host
		}
		if strings.HasPrefix(xOrigURI, "/") {
			return plainHost(firstNonEmpty(first(v.xForwardedHost), first(v.host)))
		}
		return ""
	case strings.HasPrefix(xFwdURI, "/"):
		return plainHost(first(v.xForwardedHost))
	}
	return ""
}

// urlHost is the host of an absolute http(s) URL; ok is false when s is not
// one (readOriginal then falls back to X-Original-URI). An absolute URL that
// is not plain printable ASCII with well-formed escapes, or whose host is not
// a plain host[:port], gives "" (no assertion) rather than a guess.
func urlHost(s string) (host string, ok bool) {
	var rest string
	switch {
	case len(s) >= 8 && strings.EqualFold(s[:8], "https://"):
		rest = s[8:]
	case len(s) >= 7 && strings.EqualFold(s[:7], "http://"):
		rest = s[7:]
	default:
		return "", false
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	if end == 0 {
		return "", false
	}
	for i := end; i < len(rest); i++ {
		switch c := rest[i]; {
		case c <= ' ' || c >= 0x7f:
			return "", true
		case c == '%' && (i+2 >= len(rest) || !isHex(rest[i+1]) || !isHex(rest[i+2])):
			return "", true
		}
	}
	return plainHost(rest[:end]), true
}

// plainHost returns host lowercased when it is a DNS name, an IPv4 address
// or a bracketed IPv6 address, with an optional numeric port; "" otherwise.
func plainHost(host string) string {
	if host == "" || len(host) > maxHostLen {
		return ""
	}
	if host[0] == '[' {
		return bracketedHost(host)
	}
	upper, colon := false, -1
	for i := 0; i < len(host); i++ {
		switch hostByte[host[i]] {
		case hostName:
		case hostUpper:
			upper = true
		case hostColon:
			if colon >= 0 {
				return ""
			}
			colon = i
		default:
			return ""
		}
	}
	if colon == 0 || (colon > 0 && !validPort(host[colon+1:])) {
		return ""
	}
	if upper {
		return strings.ToLower(host)
	}
	return host
}

// bracketedHost is plainHost for "[IPv6]" and "[IPv6]:port".
func bracketedHost(host string) string {
	end := strings.IndexByte(host, ']')
	if end < 2 {
		return ""
	}
	if rest := host[end+1:]; rest != "" && (rest[0] != ':' || !validPort(rest[1:])) {
		return ""
	}
	upper := false
	for i := 1; i < end; i++ {
		switch c := host[i]; {
		case c >= 'A' && c <= 'F':
			upper = true
		case !isHex(c) && c != ':' && c != '.':
			return ""
		}
	}
	if _, err := netip.ParseAddr(host[1:end]); err != nil {
		return ""
	}
	if upper {
		return strings.ToLower(host)
	}
	return host
}

func validPort(p string) bool {
	if p == "" || len(p) > 5 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

// The bytes of a host name, for plainHost.
const (
	hostOther = iota
	hostName  // a-z 0-9 . - _
	hostUpper // A-Z
	hostColon
)

var hostByte = func() (t [256]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = hostName
		t[c-'a'+'A'] = hostUpper
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = hostName
	}
	t['.'], t['-'], t['_'], t[':'] = hostName, hostName, hostName, hostColon
	return t
}()

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}
