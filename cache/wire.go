package cache

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/authgear/authgear-forwardauth/resolver"
)

// How an entry is stored in Redis: the decision itself, never Authgear's raw
// headers, in a compact form that decodes without reflection (a Redis hit is
// on the request path):
//
//	version byte (1), flags byte (allow, anonymous, verified, can reauthenticate),
//	uvarint expires and stale-until (unix ms, 0: none), uvarint authenticated-at,
//	user id, then a count and each role, then a count and each AMR value, every
//	string as a uvarint length and its bytes.
const wireVersion = 1

const (
	flagAllow = 1 << iota
	flagAnonymous
	flagVerified
	flagCanReauth
)

var errWire = errors.New("malformed cached decision")

func encodeEntry(e Entry) []byte {
	d := e.Decision
	var flags byte
	if d.Allow {
		flags |= flagAllow
	}
	id := d.Identity
	if id.Anonymous {
		flags |= flagAnonymous
	}
	if id.Verified {
		flags |= flagVerified
	}
	if id.CanReauthenticate {
		flags |= flagCanReauth
	}
	b := make([]byte, 0, 64+len(id.UserID))
	b = append(b, wireVersion, flags)
	b = binary.AppendUvarint(b, uint64(e.Expires.UnixMilli()))
	var stale int64
	if !e.StaleUntil.IsZero() {
		stale = e.StaleUntil.UnixMilli()
	}
	b = binary.AppendUvarint(b, uint64(stale))
	b = binary.AppendUvarint(b, uint64(max(id.AuthenticatedAt, 0)))
	b = appendString(b, id.UserID)
	for _, list := range [][]string{id.Roles, id.AMR} {
		b = binary.AppendUvarint(b, uint64(len(list)))
		for _, v := range list {
			b = appendString(b, v)
		}
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodeEntry reads what encodeEntry wrote. Its strings share s's memory.
func decodeEntry(s string) (Entry, error) {
	r := wireReader{s: s}
	if r.byte() != wireVersion {
		return Entry{}, errWire
	}
	flags := r.byte()
	e := Entry{Expires: time.UnixMilli(int64(r.uvarint()))}
	if stale := int64(r.uvarint()); stale != 0 {
		e.StaleUntil = time.UnixMilli(stale)
	}
	id := resolver.Identity{
		AuthenticatedAt:   int64(r.uvarint()),
		UserID:            r.string(),
		Anonymous:         flags&flagAnonymous != 0,
		Verified:          flags&flagVerified != 0,
		CanReauthenticate: flags&flagCanReauth != 0,
	}
	id.Roles = r.strings()
	id.AMR = r.strings()
	if r.bad || r.s != "" {
		return Entry{}, errWire
	}
	if flags&flagAllow == 0 {
		e.Decision = resolver.Deny()
	} else {
		e.Decision = resolver.Allow(id, e.Expires)
	}
	return e, nil
}

type wireReader struct {
	s   string
	bad bool
}

func (r *wireReader) byte() byte {
	if r.s == "" {
		r.bad = true
		return 0
	}
	b := r.s[0]
	r.s = r.s[1:]
	return b
}

func (r *wireReader) uvarint() uint64 {
	var v uint64
	for shift := 0; shift < 64; shift += 7 {
		b := r.byte()
		v |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return v
		}
	}
	r.bad = true
	return 0
}

func (r *wireReader) string() string {
	n := r.uvarint()
	if n > uint64(len(r.s)) {
		r.bad = true
		return ""
	}
	v := r.s[:n]
	r.s = r.s[n:]
	return v
}

func (r *wireReader) strings() []string {
	n := r.uvarint()
	if n == 0 || n > uint64(len(r.s)) { // each string takes a byte at least
		if n != 0 {
			r.bad = true
		}
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = r.string()
	}
	return out
}
