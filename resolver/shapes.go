package resolver

import (
	"strings"
	"sync/atomic"
)

// The shapes of what Authgear issues (authgear-server: pkg/lib/oauth/token.go,
// pkg/lib/session/idpsession/provider.go, pkg/lib/oauth/token_encoding.go).
// Anything else cannot resolve, so it is refused without asking Authgear.
const (
	// OpaqueTokenLen is the length of opaque access tokens and app_session
	// tokens: 32 characters of [A-Za-z0-9].
	OpaqueTokenLen = 32
	// sessionTokenLen is "<uuid>.<32 characters>", the IdP session cookie.
	sessionTokenLen = 36 + 1 + OpaqueTokenLen
	// maxHeaderMemo is how many JWT header segments Shapes remembers: one per
	// signing key in use is enough (Authgear's are identical for a kid).
	maxHeaderMemo = 4
	// maxJWTHeaderSegment bounds a header segment worth decoding; Authgear's
	// is about 100 characters.
	maxJWTHeaderSegment = 1024
)

// Shapes tells a credential Authgear could have issued from one it never
// issues. It remembers the few JWT header segments it accepted lately, so
// that checking a JWT costs no JSON parse once its signing key is known. The
// zero value is ready to use and safe for concurrent use.
type Shapes struct {
	headers atomic.Pointer[[]string]
}

// AccessToken reports whether t can be an access token: opaque, or a JWT
// (Bearer and the app_access_token cookie).
func (s *Shapes) AccessToken(t string) bool {
	if len(t) == OpaqueTokenLen {
		return IsOpaqueToken(t)
	}
	return s.JWT(t)
}

// IsOpaqueToken reports whether t has the shape of an opaque access token or
// an app_session token: exactly 32 characters of [A-Za-z0-9].
func IsOpaqueToken(t string) bool {
	if len(t) != OpaqueTokenLen {
		return false
	}
	for i := 0; i < len(t); i++ {
		if !alnumByte[t[i]] {
			return false
		}
	}
	return true
}

// IsSessionToken reports whether t has the shape of the IdP session cookie:
// a UUID, a dot, then 32 characters of [A-Za-z0-9].
func IsSessionToken(t string) bool {
	if len(t) != sessionTokenLen || t[36] != '.' {
		return false
	}
	for i := 0; i < 36; i++ {
		switch i {
		case 8, 13, 18, 23:
			if t[i] != '-' {
				return false
			}
		default:
			if !hexByte[t[i]] {
				return false
			}
		}
	}
	return IsOpaqueToken(t[37:])
}

// JWT reports whether t has the shape of Authgear's JWT access tokens: three
// non-empty base64url segments, at most MaxJWTSize long, whose header says
// alg RS256, typ at+jwt and names a kid. The signature is not checked.
func (s *Shapes) JWT(t string) bool {
	if len(t) > MaxJWTSize {
		return false
	}
	dot1 := strings.IndexByte(t, '.')
	if dot1 < 1 {
		return false
	}
	dot2 := strings.IndexByte(t[dot1+1:], '.') + dot1 + 1
	if dot2 < dot1+2 || dot2 == len(t)-1 || !base64URL(t[:dot1]) || !base64URL(t[dot1+1:dot2]) || !base64URL(t[dot2+1:]) {
		return false // a third dot fails the last segment
	}
	header := t[:dot1]
	if hs := s.headers.Load(); hs != nil {
		for _, h := range *hs {
			if h == header {
				return true
			}
		}
	}
	if len(header) > maxJWTHeaderSegment {
		return false
	}
	if _, err := checkHeader(header); err != nil {
		return false
	}
	s.remember(strings.Clone(header)) // not a slice of the request's header
	return true
}

// remember adds an accepted header segment, forgetting the oldest beyond
// maxHeaderMemo. Racing writers may lose an entry: it is found again later.
func (s *Shapes) remember(h string) {
	next := []string{h}
	if hs := s.headers.Load(); hs != nil {
		for _, old := range *hs {
			if len(next) == maxHeaderMemo {
				break
			}
			if old != h {
				next = append(next, old)
			}
		}
	}
	s.headers.Store(&next)
}

// base64URL reports whether s is all base64url characters: a tight loop
// over a table, after strings.IndexByte found the dots (JWTs are ~1 KB).
func base64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		if !base64URLByte[s[i]] {
			return false
		}
	}
	return true
}

var alnumByte = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") {
		t[c] = true
	}
	return t
}()

var hexByte = func() (t [256]bool) {
	for _, c := range []byte("0123456789abcdefABCDEF") {
		t[c] = true
	}
	return t
}()
