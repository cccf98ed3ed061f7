package handler

import (
	"errors"
	"net/http"
	"strings"

	"github.com/authgear/authgear-forwardauth/resolver"
)

// errMalformed is a credential that cannot be a valid one: it is answered
// with 401 at once, never forwarded.
var errMalformed = errors.New("malformed credential")

// maxTokenLen bounds a credential: Authgear's tokens and session ids are far
// shorter, and nothing longer is worth an HMAC or a resolver call.
const maxTokenLen = 16 << 10

// cookieNames are the Authgear cookies, with the project's prefix.
type cookieNames struct {
	appSession, appAccessToken, session string
}

func newCookieNames(prefix string) cookieNames {
	return cookieNames{prefix + "app_session", prefix + "app_access_token", prefix + "session"}
}

// CredentialShapes says which credentials are worth a cache lookup and a
// resolver call.
type CredentialShapes int

const (
	// ShapesAuthgear (CREDENTIAL_SHAPES=authgear, the default): only the
	// shapes Authgear issues; any other credential is dropped as Authgear
	// would ignore it, without a cache lookup or a resolver call.
	ShapesAuthgear CredentialShapes = iota
	// ShapesAny (CREDENTIAL_SHAPES=any): any well-formed value, for a future
	// Authgear whose credentials look different.
	ShapesAny
)

// String is the CREDENTIAL_SHAPES value.
func (s CredentialShapes) String() string {
	if s == ShapesAny {
		return "any"
	}
	return "authgear"
}

// readCredentials takes the Authgear credentials out of a request's headers,
// and nothing else: other cookies and schemes stay with the app. bearer says
// whether an Authorization: Bearer header was sent, for the 401's error code.
// With shapes (nil: any shape), a credential Authgear never issues is
// dropped, as Authgear ignores it and goes on to the next one; misshapen says
// one was.
func readCredentials(h http.Header, names cookieNames, shapes *resolver.Shapes) (c resolver.Credentials, bearer, misshapen bool, err error) {
	return credentialsOf(h["Authorization"], h["Cookie"], names, shapes)
}

// credentialsOf is readCredentials given the request's Authorization and
// Cookie headers.
func credentialsOf(auth, cookies []string, names cookieNames, shapes *resolver.Shapes) (c resolver.Credentials, bearer, misshapen bool, err error) {
	if len(auth) > 0 {
		if len(auth) > 1 {
			return c, true, false, errMalformed // ambiguous: which one would the app trust?
		}
		scheme, token, _ := strings.Cut(auth[0], " ")
		if strings.EqualFold(scheme, "Bearer") {
			bearer = true
			token = strings.Trim(token, " ")
			switch {
			case shapes != nil && !shapes.AccessToken(token):
				misshapen = true
			case shapes == nil && !validToken(token):
				return c, true, false, errMalformed
			default:
				c.Bearer = token
			}
		}
		// Any other scheme (Basic, ...) is not an Authgear credential.
	}
	var seen [3]bool // net/http's Request.Cookie, which Authgear uses, takes the first valid one of a name
	for _, line := range cookies {
		for len(line) > 0 {
			// IndexByte, not strings.Cut: this runs for every cookie of every
			// request.
			part := line
			if semi := strings.IndexByte(line, ';'); semi >= 0 {
				part, line = line[:semi], line[semi+1:]
			} else {
				line = ""
			}
			eq := strings.IndexByte(part, '=')
			if eq < 0 {
				continue
			}
			value := part[eq+1:]
			var dst *string
			var i int
			switch strings.Trim(part[:eq], " ") {
			case names.appSession:
				dst, i = &c.AppSession, 0
			case names.appAccessToken:
				dst, i = &c.AppAccessToken, 1
			case names.session:
				dst, i = &c.Session, 2
			default:
				continue
			}
			if seen[i] {
				continue
			}
			v, ok := cookieValue(value)
			if !ok {
				continue
			}
			seen[i] = true
			if shapes != nil && !cookieShape(shapes, i, v) {
				misshapen = true
				continue
			}
			*dst = v
		}
	}
	return c, bearer, misshapen, nil
}

// cookieShape checks the cookie of index i (app_session, app_access_token,
// session) against what Authgear puts in it.
func cookieShape(shapes *resolver.Shapes, i int, v string) bool {
	switch i {
	case 0:
		return resolver.IsOpaqueToken(v)
	case 1:
		return shapes.AccessToken(v)
	default:
		return resolver.IsSessionToken(v)
	}
}

// validToken accepts the b64token of RFC 6750: what Authgear issues, and
// nothing that could carry a header or cookie separator.
func validToken(t string) bool {
	if t == "" || len(t) > maxTokenLen {
		return false
	}
	for i := 0; i < len(t); i++ {
		if !tokenByte[t[i]] {
			return false
		}
	}
	return true
}

// tokenByte is the b64token alphabet, as a table: tokens are long and checked
// on every request.
var tokenByte = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=") {
		t[c] = true
	}
	return t
}()

// cookieValue checks a cookie value as net/http does (which is what Authgear
// runs): an invalid one is ignored, as if it were not sent.
func cookieValue(v string) (string, bool) {
	v = strings.TrimRight(v, " ")
	if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	if v == "" || len(v) > maxTokenLen {
		return "", false
	}
	for i := 0; i < len(v); i++ {
		if b := v[i]; b < 0x20 || b >= 0x7f || b == '"' || b == ';' || b == '\\' {
			return "", false
		}
	}
	return v, true
}
