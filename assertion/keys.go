// Package assertion signs the identity of an allowed request as a short-lived
// JWT for the application behind the gateway (X-Authgear-Jwt-Assertion), and
// publishes the keys that verify it as a JWK Set.
package assertion

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// maxKeysFile bounds the key file: a set of a few keys is a few KiB.
const maxKeysFile = 1 << 20

// minRSABits is the smallest RSA modulus accepted.
const minRSABits = 2048

// Algorithms lists the signature algorithms a key in the file may have, with
// the key each needs. ES256 is what genkey makes and what every verifier
// supports; RSA is accepted for verifiers that know nothing else, at a
// signing cost some twenty-five times ES256's (BENCHMARKS.md).
var Algorithms = []string{"ES256 (EC P-256)", "ES384 (EC P-384)", "ES512 (EC P-521)", "EdDSA (OKP Ed25519)", "RS256 (RSA 2048+)", "PS256 (RSA 2048+)"}

// Keys is a loaded key file: the first key signs, all of them verify.
type Keys struct {
	signer  crypto.Signer
	alg     jwa.SignatureAlgorithm
	kid     string
	jwks    []byte // the public JWK Set, served as it is
	kids    []string
	private []bool
}

// KeyID is the kid of the signing key.
func (k *Keys) KeyID() string { return k.kid }

// Algorithm is the alg of the signing key.
func (k *Keys) Algorithm() string { return k.alg.String() }

// PublicJWKS is the JWK Set of every key's public part.
func (k *Keys) PublicJWKS() []byte { return k.jwks }

// LoadKeys reads a JWK Set file. Errors are one line and never quote key
// material.
func LoadKeys(path string) (*Keys, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the key file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeysFile+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read the key file: %w", err)
	}
	if len(b) > maxKeysFile {
		return nil, errors.New("the key file is larger than 1 MiB: is it a JWK Set?")
	}
	return ParseKeys(b)
}

// ParseKeys reads a JWK Set (or a single JWK). The first key must be a
// private key and signs; the others (private or public) are published so
// that tokens they signed still verify after a rotation. A key without kid
// gets its RFC 7638 thumbprint, so replicas sharing the file agree on it.
func ParseKeys(data []byte) (*Keys, error) {
	set, err := jwk.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("not a JWK Set: %s", oneLine(err.Error()))
	}
	if set.Len() == 0 {
		return nil, errors.New("the JWK Set has no keys")
	}
	pub := jwk.NewSet()
	out := &Keys{}
	seen := map[string]int{}
	for i := range set.Len() {
		key, _ := set.Key(i)
		n := i + 1
		alg, err := keyAlgorithm(key)
		if err != nil {
			return nil, fmt.Errorf("key %d: %v", n, err)
		}
		if use, ok := key.KeyUsage(); ok && use != "sig" {
			return nil, fmt.Errorf("key %d: \"use\" is %q, want \"sig\"", n, use)
		}
		private, err := jwk.IsPrivateKey(key)
		if err != nil {
			return nil, fmt.Errorf("key %d: %v", n, err)
		}
		kid, ok := key.KeyID()
		if !ok || kid == "" {
			tp, err := key.Thumbprint(crypto.SHA256)
			if err != nil {
				return nil, fmt.Errorf("key %d: no kid, and no thumbprint: %v", n, err)
			}
			kid = base64.RawURLEncoding.EncodeToString(tp)
		}
		if prev, dup := seen[kid]; dup {
			return nil, fmt.Errorf("keys %d and %d have the same kid %q: verifiers could not tell them apart", prev, n, kid)
		}
		seen[kid] = n
		p, err := jwk.PublicKeyOf(key)
		if err != nil {
			return nil, fmt.Errorf("key %d: %v", n, err)
		}
		for _, kv := range [][2]any{{jwk.KeyIDKey, kid}, {jwk.AlgorithmKey, alg}, {jwk.KeyUsageKey, "sig"}} {
			if err := p.Set(kv[0].(string), kv[1]); err != nil {
				return nil, fmt.Errorf("key %d: %v", n, err)
			}
		}
		if err := pub.AddKey(p); err != nil {
			return nil, fmt.Errorf("key %d: %v", n, err)
		}
		out.kids = append(out.kids, kid)
		out.private = append(out.private, private)
		if i > 0 {
			continue
		}
		if !private {
			return nil, errors.New("the first key, the one that signs, has no private part (\"d\"): put a private key first (forwardauth genkey makes one)")
		}
		var raw any
		if err := jwk.Export(key, &raw); err != nil {
			return nil, fmt.Errorf("key 1: %v", err)
		}
		signer, ok := raw.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("key 1: %T cannot sign", raw)
		}
		out.signer, out.alg, out.kid = signer, alg, kid
	}
	jwks, err := json.Marshal(pub)
	if err != nil {
		return nil, err
	}
	out.jwks = jwks
	return out, nil
}

// keyAlgorithm returns the signature algorithm of key: its "alg", or the one
// its type implies, which must agree with the key.
func keyAlgorithm(key jwk.Key) (jwa.SignatureAlgorithm, error) {
	var raw any
	if err := jwk.Export(key, &raw); err != nil {
		return jwa.EmptySignatureAlgorithm(), fmt.Errorf("unusable key: %s", oneLine(err.Error()))
	}
	var implied []jwa.SignatureAlgorithm
	switch k := raw.(type) {
	case *ecdsa.PrivateKey:
		implied = curveAlgorithm(k.Curve)
	case *ecdsa.PublicKey:
		implied = curveAlgorithm(k.Curve)
	case ed25519.PrivateKey, ed25519.PublicKey:
		implied = []jwa.SignatureAlgorithm{jwa.EdDSA()}
	case *rsa.PrivateKey:
		implied = rsaAlgorithms(k.N.BitLen())
	case *rsa.PublicKey:
		implied = rsaAlgorithms(k.N.BitLen())
	}
	if len(implied) == 0 {
		return jwa.EmptySignatureAlgorithm(), fmt.Errorf("unsupported key (kty %s); accepted: %s", key.KeyType(), strings.Join(Algorithms, ", "))
	}
	a, ok := key.Algorithm()
	if !ok || a.String() == "" {
		return implied[0], nil
	}
	for _, alg := range implied {
		if a.String() == alg.String() {
			return alg, nil
		}
	}
	return jwa.EmptySignatureAlgorithm(), fmt.Errorf("unsupported \"alg\" %q for this key; accepted: %s", a.String(), strings.Join(Algorithms, ", "))
}

func curveAlgorithm(c elliptic.Curve) []jwa.SignatureAlgorithm {
	switch c {
	case elliptic.P256():
		return []jwa.SignatureAlgorithm{jwa.ES256()}
	case elliptic.P384():
		return []jwa.SignatureAlgorithm{jwa.ES384()}
	case elliptic.P521():
		return []jwa.SignatureAlgorithm{jwa.ES512()}
	}
	return nil
}

func rsaAlgorithms(bits int) []jwa.SignatureAlgorithm {
	if bits < minRSABits {
		return nil
	}
	return []jwa.SignatureAlgorithm{jwa.RS256(), jwa.PS256()}
}

// GenerateSet returns a JWK Set holding a new ES256 key (P-256). Given the
// current key file, it returns that set with the new key appended: published
// but not signing yet, the first step of a rotation (verifiers learn the key
// before any token carries its kid; moving it first later makes it sign).
func GenerateSet(existing []byte) ([]byte, error) {
	set := jwk.NewSet()
	if existing != nil {
		if _, err := ParseKeys(existing); err != nil {
			return nil, err
		}
		old, err := jwk.Parse(existing)
		if err != nil {
			return nil, err
		}
		set = old
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	key, err := jwk.Import(priv)
	if err != nil {
		return nil, err
	}
	tp, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	for _, kv := range [][2]any{{jwk.KeyIDKey, base64.RawURLEncoding.EncodeToString(tp)}, {jwk.AlgorithmKey, jwa.ES256()}, {jwk.KeyUsageKey, "sig"}} {
		if err := key.Set(kv[0].(string), kv[1]); err != nil {
			return nil, err
		}
	}
	if err := set.AddKey(key); err != nil {
		return nil, err
	}
	return json.MarshalIndent(set, "", "  ")
}

// oneLine keeps an error on one line (start-up errors are one line each).
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
