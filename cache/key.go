package cache

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"sync"

	"github.com/authgear/authgear-forwardauth/resolver"
)

// Key identifies one set of credentials: an HMAC-SHA256 of all of them under a
// per-deployment secret, so that neither memory nor Redis holds a raw token
// and a leaked key cannot be tested against guessed tokens.
type Key [sha256.Size]byte

// String is the hex form used in Redis.
func (k Key) String() string { return hex.EncodeToString(k[:]) }

// Keyer computes keys. It is safe for concurrent use and allocates nothing per
// key: the keyed hash states are pooled.
type Keyer struct {
	pool sync.Pool
}

type keyState struct {
	mac hash.Hash
	buf []byte
	sum []byte
}

// NewKeyer returns a Keyer for secret. Replicas sharing a Redis must share it.
func NewKeyer(secret []byte) *Keyer {
	k := &Keyer{}
	k.pool.New = func() any {
		return &keyState{mac: hmac.New(sha256.New, secret), buf: make([]byte, 0, 512), sum: make([]byte, 0, sha256.Size)}
	}
	return k
}

// Key returns the key of c. Each credential is written with a tag and its
// length, so that no two different sets of credentials share an input.
func (k *Keyer) Key(c resolver.Credentials) Key {
	s := k.pool.Get().(*keyState)
	b := s.buf[:0]
	b = appendField(b, 'b', c.Bearer)
	b = appendField(b, 'a', c.AppSession)
	b = appendField(b, 't', c.AppAccessToken)
	b = appendField(b, 's', c.Session)
	s.mac.Reset()
	s.mac.Write(b)
	var key Key
	copy(key[:], s.mac.Sum(s.sum[:0])) // summing into key itself would move it to the heap
	if cap(b) <= 4096 {                // do not keep a huge buffer alive for one odd request
		s.buf = b
	}
	k.pool.Put(s)
	return key
}

func appendField(b []byte, tag byte, v string) []byte {
	b = append(b, tag)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}
