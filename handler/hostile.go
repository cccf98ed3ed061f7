package handler

import (
	"net/http"
	"strings"
)

// Requests that describe something other than what the application will
// see are refused before anything is looked up: the gateway chose a route
// policy by its own reading of the path, and the application may read it
// otherwise; an identity header sent by the client may reach the
// application in a spelling the gateway did not strip.

// ambiguousTarget reports whether a request-target's path (the part before
// '?') could be read as another path by some application server: one that
// decodes twice, folds '\' to '/', drops ";params", resolves dot segments
// or collapses "//", or ends the path at a decoded '?' or '#'. Browsers
// never send such paths. The rule, as the
// regular expression the README gives gateways:
//
//	(?i)^[^?]*(%(2[5def]|3[0-9b]|[46][1-9a-f]|[57][0-9a]|5[cf]|7[ef]|[01][0-9a-f])|[\\;]|//|/\.\.?(/|\?|#|%23|%3f|$))
//
// plus, here only, a path not starting with '/', raw bytes outside visible
// ASCII and malformed escapes.
func ambiguousTarget(target string) bool {
	if target == "" || target[0] != '/' {
		return true
	}
	segStart := 0 // index just past the last '/'
	for i := 0; i < len(target); i++ {
		c := target[i]
		switch {
		case c == '?':
			return dotSegment(target[segStart:i])
		case c == '/':
			if i > 0 && (target[i-1] == '/' || dotSegment(target[segStart:i])) {
				return true
			}
			segStart = i + 1
		case c == '%':
			if i+2 >= len(target) || !isHex(target[i+1]) || !isHex(target[i+2]) {
				return true
			}
			b := unhex(target[i+1])<<4 | unhex(target[i+2])
			if ambiguousEscape[b] {
				return true
			}
			// A dot segment ended by an encoded '?' or '#': /public/..%3F
			// is "/" to an application that decodes before it splits off
			// the query or fragment.
			if (b == '?' || b == '#') && dotSegment(target[segStart:i]) {
				return true
			}
			i += 2
		case c == '#':
			// Not in a request-target at all; some gateways pass it on
			// (Caddy, as %23), an application may take it as the end of
			// the path.
			if dotSegment(target[segStart:i]) {
				return true
			}
		case c <= ' ' || c >= 0x7f || c == '\\' || c == ';':
			return true
		}
	}
	return dotSegment(target[segStart:])
}

func dotSegment(s string) bool { return s == "." || s == ".." }

// ambiguousEscape marks the bytes whose percent-encoding some server reads
// as something else than data: unreserved characters (a gateway and an
// application may disagree on whether %61dmin is /admin), '/', '\', '%'
// (double decoding), ';' and control bytes.
var ambiguousEscape = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/\\%;\x7f") {
		t[c] = true
	}
	return t
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// ambiguousOriginal judges the request-targets a trusted gateway reports, in
// either convention; more than one may be present (a client can add the
// other convention's headers), and each must be unambiguous.
func (v *requestHeaders) ambiguousOriginal() bool {
	for _, t := range [...][]string{v.xOriginalURI, v.xForwardedURI} {
		if len(t) > 0 && ambiguousTarget(t[0]) {
			return true
		}
	}
	if len(v.xOriginalURL) > 0 {
		// scheme://authority/path...: the target starts at the first '/'
		// after the authority.
		_, rest, ok := strings.Cut(v.xOriginalURL[0], "://")
		if !ok {
			return true
		}
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			return true
		}
		return ambiguousTarget(rest[i:])
	}
	return false
}

// identityHeaderName reports whether an application could read a header
// name as one of ours: lower-cased and with every character but letters
// and digits dropped, it starts with "xauthgear" (X-Authgear-User-Id,
// x_authgear_user_id, X.Authgear.User.Id ... are one variable to PHP, WSGI
// and Rack). Gateways strip the spellings they can; one that reaches the
// service came from the client.
func identityHeaderName(name string) bool {
	return len(name) >= len("xauthgear") && lettersHavePrefix(name, "xauthgear")
}

// lettersHavePrefix reports whether name's letters and digits, lower-cased,
// start with want (lower-case letters and digits): how CGI-style servers
// see a header name, separators and case aside.
func lettersHavePrefix(name, want string) bool {
	n := 0
	for i := 0; i < len(name) && n < len(want); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		switch {
		case c == want[n]:
			n++
		case 'a' <= c && c <= 'z' || '0' <= c && c <= '9':
			return false
		}
	}
	return n == len(want)
}

// lettersEqual: name's letters and digits, lower-cased, are exactly want.
func lettersEqual(name, want string) bool {
	if !lettersHavePrefix(name, want) {
		return false
	}
	n := 0
	for i := 0; i < len(name); i++ {
		if c := name[i] | 0x20; 'a' <= c && c <= 'z' || '0' <= name[i] && name[i] <= '9' {
			n++
		}
	}
	return n == len(want)
}

// methodOverride reports whether a header name makes frameworks treat a
// request as another method (X-HTTP-Method-Override, X-HTTP-Method,
// X-Method-Override, in any spelling a CGI-style server folds into one):
// a "preflight" carrying one is not a preflight.
func methodOverride(name string) bool {
	return lettersEqual(name, "xhttpmethodoverride") || lettersEqual(name, "xhttpmethod") || lettersEqual(name, "xmethodoverride")
}

// realPreflight reports whether the original request is exactly a CORS
// preflight: OPTIONS with Origin and Access-Control-Request-Method, no
// method override, no content and no sign of a body. Anything else that
// looks like one may run application code, so it needs a credential.
func realPreflight(r *http.Request, o original) bool {
	h := r.Header
	if o.method != http.MethodOptions || h.Get("Origin") == "" || h.Get("Access-Control-Request-Method") == "" ||
		h.Get("Content-Type") != "" {
		return false
	}
	for name := range h {
		if methodOverride(name) {
			return false
		}
	}
	// The body as the gateway reports it (nginx's sub-request has none of
	// its own), or as it forwarded it (Traefik's forwardBody).
	if cl := h.Get("X-Original-Content-Length"); cl != "" && cl != "0" {
		return false
	}
	if _, ok := h["X-Original-Transfer-Encoding"]; ok {
		return false
	}
	return r.ContentLength <= 0 && len(r.TransferEncoding) == 0
}

// maxLoggedLen bounds what a log line carries of client input.
const maxLoggedLen = 200

// clip shortens s for a log line.
func clip(s string) string {
	if len(s) <= maxLoggedLen {
		return s
	}
	return s[:maxLoggedLen] + "...(truncated)"
}
