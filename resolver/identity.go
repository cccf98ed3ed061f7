// Package resolver obtains identities from Authgear: through its Resolver
// Endpoint, and (optionally) by verifying JWT access tokens locally.
package resolver

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The identity headers, in canonical form so that they can be assigned to an
// http.Header without canonicalising them again on every response.
const (
	HeaderSessionValid       = "X-Authgear-Session-Valid"
	HeaderUserID             = "X-Authgear-User-Id"
	HeaderUserAnonymous      = "X-Authgear-User-Anonymous"
	HeaderUserVerified       = "X-Authgear-User-Verified"
	HeaderUserCanReauth      = "X-Authgear-User-Can-Reauthenticate"
	HeaderUserRoles          = "X-Authgear-User-Roles"
	HeaderSessionAMR         = "X-Authgear-Session-Amr"
	HeaderSessionAuthTime    = "X-Authgear-Session-Authenticated-At"
	identityHeaderCount      = 8
	maxIdentityHeaderValueSz = 4096
)

// IdentityHeaders lists every header an allow sets. Gateways must copy (or
// strip) all of them so that a client cannot smuggle its own.
func IdentityHeaders() []string {
	return []string{
		HeaderUserID, HeaderUserAnonymous, HeaderUserVerified, HeaderUserCanReauth,
		HeaderUserRoles, HeaderSessionAMR, HeaderSessionAuthTime, HeaderSessionValid,
	}
}

// Identity is who Authgear says is behind a credential.
type Identity struct {
	UserID            string
	Anonymous         bool
	Verified          bool
	CanReauthenticate bool
	Roles             []string
	AMR               []string
	// AuthenticatedAt is in Unix seconds; 0 when Authgear does not know it.
	AuthenticatedAt int64
}

// Decision is the answer for one set of credentials: allow with an identity,
// or deny. A Decision is immutable once made: the cache hands the same value to
// many requests at once.
type Decision struct {
	Allow    bool
	Identity Identity
	// Expires is when the decision stops being true on its own (a JWT's exp);
	// zero when only the cache's TTL limits it.
	Expires time.Time
	// Stale marks an allow served past its TTL because Authgear is failing.
	Stale bool
	// TokenID (jti) and IssuedAt (iat) of an allow verified locally from a
	// JWT, for the deny list; empty otherwise.
	TokenID  string
	IssuedAt time.Time

	header [identityHeaderCount]headerField
}

type headerField struct {
	name  string
	value []string
}

// Deny is the decision for a credential Authgear does not accept.
func Deny() *Decision { return &Decision{} }

// Allow returns an allow for id that stops being true at expires (zero: never
// on its own). Its headers are rendered once here, not on every response.
func Allow(id Identity, expires time.Time) *Decision {
	d := &Decision{Allow: true, Identity: id, Expires: expires}
	values := make([]string, identityHeaderCount) // one allocation for the eight values
	n := 0
	set := func(k, v string) {
		values[n] = v
		d.header[n] = headerField{k, values[n : n+1 : n+1]}
		n++
	}
	set(HeaderSessionValid, "true")
	set(HeaderUserID, id.UserID)
	set(HeaderUserAnonymous, strconv.FormatBool(id.Anonymous))
	set(HeaderUserVerified, strconv.FormatBool(id.Verified))
	set(HeaderUserCanReauth, strconv.FormatBool(id.CanReauthenticate))
	// Authgear joins roles with "," and AMR values with a single space.
	set(HeaderUserRoles, strings.Join(id.Roles, ","))
	set(HeaderSessionAMR, strings.Join(id.AMR, " "))
	authAt := ""
	if id.AuthenticatedAt > 0 {
		authAt = strconv.FormatInt(id.AuthenticatedAt, 10)
	}
	set(HeaderSessionAuthTime, authAt)
	return d
}

// SetHeader sets the identity headers of an allow on h, every one present
// (empty when unknown) so that a gateway copying them overwrites what a client
// sent. The values are shared between responses and must not be modified.
func (d *Decision) SetHeader(h http.Header) {
	if !d.Allow {
		return
	}
	for _, f := range d.header {
		h[f.name] = f.value
	}
}

// Header returns the identity headers of an allow as a new map.
func (d *Decision) Header() http.Header {
	h := make(http.Header, identityHeaderCount)
	d.SetHeader(h)
	return h
}

// validIdentity reports whether id can be echoed as headers and read back the
// same: a user id, role keys and AMR values of visible ASCII without spaces
// or commas (roles are joined with "," and AMR values with " "), so nothing
// from upstream can split, fold or smuggle a header.
func validIdentity(id Identity) bool {
	if !validAtom(id.UserID) {
		return false
	}
	for _, list := range [][]string{id.Roles, id.AMR} {
		for _, v := range list {
			if !validAtom(v) {
				return false
			}
		}
	}
	return len(id.Roles) <= 256 && len(id.AMR) <= 64
}

func validAtom(v string) bool {
	if v == "" || len(v) > maxIdentityHeaderValueSz {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c > '~' || c == ',' {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether v may be echoed into a response header:
// printable ASCII and spaces only, so nothing from upstream can split or
// smuggle a header.
func validHeaderValue(v string) bool {
	if len(v) > maxIdentityHeaderValueSz {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}
