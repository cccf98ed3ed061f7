// Package signin holds the pieces of the built-in browser sign-in with
// Authgear's authorize endpoint: the signed state that carries a deep link
// through Authgear and back, and the URLs of Authgear's authorize and
// end_session endpoints.
//
// Authgear returns only to a redirect URI registered exactly (path and query
// included), so a deep link cannot be the redirect URI: each app host
// registers one fixed callback, and the deep link rides in the OAuth state,
// signed so that the callback can trust it and dated so that an old link
// stops working.
package signin

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/url"
	"strings"
	"time"
)

// Errors of Verify. Every refusal is one of these.
var (
	// ErrMalformed: not a state this service could have made.
	ErrMalformed = errors.New("malformed state")
	// ErrSignature: the signature does not match (tampered, or another secret).
	ErrSignature = errors.New("state signature mismatch")
	// ErrExpired: authentic, but past its expiry.
	ErrExpired = errors.New("state expired")
)

// MinSecretLen is the shortest secret NewSigner accepts.
const MinSecretLen = 32

// MaxReturnURL bounds the URL a state carries. The state travels in a
// Location header that nginx must buffer whole (4 KiB by default) on the
// auth sub-request; Clean fits longer URLs under it.
const MaxReturnURL = 1536

// maxState bounds what Verify decodes: a state of MaxReturnURL and its
// framing, with room to spare; anything longer is refused unread.
const maxState = 4096

const (
	version  = 1
	macLen   = sha256.Size
	headLen  = 1 + 8 // version, expiry (Unix seconds, big-endian)
	keyLabel = "authgear-forwardauth signin state v1"
)

// State is what a state carries.
type State struct {
	// ReturnURL is the absolute http(s) URL to send the browser to after
	// sign-in (no user info).
	ReturnURL *url.URL
	// Expires is when the state stops being accepted.
	Expires time.Time
}

// Signer makes and checks states. The secret must be the same on every
// replica: the callback may reach another one than the redirect came from.
type Signer struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

// NewSigner returns a Signer whose states live ttl. now is the clock (nil:
// time.Now).
func NewSigner(secret []byte, ttl time.Duration, now func() time.Time) (*Signer, error) {
	if len(secret) < MinSecretLen {
		return nil, errors.New("the state secret must be at least 32 characters")
	}
	if ttl <= 0 {
		return nil, errors.New("the state lifetime must be positive")
	}
	if now == nil {
		now = time.Now
	}
	// A key of its own, so that the secret could be shared with another use
	// without one's MACs being valid for the other.
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(keyLabel))
	return &Signer{key: m.Sum(nil), ttl: ttl, now: now}, nil
}

// Sign returns the state carrying u, valid for the Signer's ttl. u must be
// an absolute http(s) URL without user info and at most MaxReturnURL long
// (see Clean).
func (s *Signer) Sign(u *url.URL) (string, error) {
	if err := checkReturnURL(u); err != nil {
		return "", err
	}
	raw := u.String()
	if len(raw) > MaxReturnURL {
		return "", errors.New("return URL too long")
	}
	payload := make([]byte, headLen, headLen+len(raw))
	payload[0] = version
	binary.BigEndian.PutUint64(payload[1:], uint64(s.now().Add(s.ttl).Unix()))
	payload = append(payload, raw...)
	return b64.EncodeToString(payload) + "." + b64.EncodeToString(s.mac(payload)), nil
}

// Verify checks a state: its form, its signature (in constant time), then
// its expiry. On ErrExpired the State is returned too: it is authentic, so
// its URL may serve as a "try again" link.
func (s *Signer) Verify(state string) (State, error) {
	if len(state) > maxState {
		return State{}, ErrMalformed
	}
	p64, m64, ok := strings.Cut(state, ".")
	if !ok {
		return State{}, ErrMalformed
	}
	payload, err := b64.DecodeString(p64)
	if err != nil || len(payload) < headLen || payload[0] != version {
		return State{}, ErrMalformed
	}
	mac, err := b64.DecodeString(m64)
	if err != nil || len(mac) != macLen {
		return State{}, ErrMalformed
	}
	if !hmac.Equal(mac, s.mac(payload)) {
		return State{}, ErrSignature
	}
	// Authentic from here on: only this service's Sign made it.
	u, err := url.Parse(string(payload[headLen:]))
	if err != nil || checkReturnURL(u) != nil {
		return State{}, ErrMalformed
	}
	exp := int64(binary.BigEndian.Uint64(payload[1:]))
	st := State{ReturnURL: u, Expires: time.Unix(exp, 0)}
	if !s.now().Before(st.Expires) {
		return st, ErrExpired
	}
	return st, nil
}

func (s *Signer) mac(payload []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write(payload)
	return m.Sum(nil)
}

// Strict: one encoding per state, so that no other string verifies as it.
var b64 = base64.RawURLEncoding.Strict()

func checkReturnURL(u *url.URL) error {
	switch {
	case u == nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Opaque != "":
		return errors.New("return URL must be an absolute http(s) URL")
	case u.User != nil:
		return errors.New("return URL must not carry user info")
	}
	return nil
}

// Clean returns u as a state carries it and a callback is built from it: no
// user info, no fragment (which never reaches a server anyway), no default
// port (the URLs registered in Authgear have none), and, when longer than
// MaxReturnURL, without its query, then without its path: a very long deep
// link lands on its page, or on its site, rather than breaking the sign-in.
func Clean(u *url.URL) *url.URL {
	c := *u
	c.User, c.Fragment, c.RawFragment = nil, "", ""
	if p := c.Port(); (c.Scheme == "https" && p == "443") || (c.Scheme == "http" && p == "80") {
		c.Host = strings.TrimSuffix(c.Host, ":"+p)
	}
	if len(c.String()) > MaxReturnURL {
		c.RawQuery, c.ForceQuery = "", false
	}
	if len(c.String()) > MaxReturnURL {
		c.Path, c.RawPath = "/", ""
	}
	return &c
}
