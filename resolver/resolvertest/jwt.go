package resolvertest

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// The fake's JWT side, as authgear-server issues access tokens when a client
// has issue_jwt_access_token: RS256, typ at+jwt, a kid from the JWKS at
// /oauth2/jwks, found through /.well-known/openid-configuration.

// jwtState is guarded by Server.mu.
type jwtState struct {
	keys             []signingKey // all published; the last one signs
	revoked          map[string]bool
	jwksFailure      bool
	discoveryFailure bool
}

type signingKey struct {
	kid  string
	priv *rsa.PrivateKey
}

// JWTLifetime is the default lifetime of issued tokens (Authgear's default).
const JWTLifetime = 1800 * time.Second

// The claims Authgear adds about the user.
const (
	ClaimIsAnonymous       = "https://authgear.com/claims/user/is_anonymous"
	ClaimIsVerified        = "https://authgear.com/claims/user/is_verified"
	ClaimCanReauthenticate = "https://authgear.com/claims/user/can_reauthenticate"
	ClaimRoles             = "https://authgear.com/claims/user/roles"
)

// Issuer is the project's origin: the iss and aud of its tokens.
func (s *Server) Issuer() string { return "https://" + s.PublicHost }

// DiscoveryURL is the internal address of the OpenID configuration.
func (s *Server) DiscoveryURL() *url.URL {
	u, _ := url.Parse(s.URL + "/.well-known/openid-configuration")
	return u
}

// JWKSURL is the internal address of the JWKS (what discovery announces).
func (s *Server) JWKSURL() string { return s.URL + "/oauth2/jwks" }

// JWKSFetches is how many requests reached /oauth2/jwks.
func (s *Server) JWKSFetches() int64 { return s.jwksFetches.Load() }

// DiscoveryFetches is how many requests reached the OpenID configuration.
func (s *Server) DiscoveryFetches() int64 { return s.discoveryFetches.Load() }

// SetJWKSFailure makes discovery and the JWKS answer 500 (false restores
// both).
func (s *Server) SetJWKSFailure(fail bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jwt.jwksFailure, s.jwt.discoveryFailure = fail, fail
}

// SetDiscoveryFailure makes only discovery answer 500 (or not): with
// SetJWKSFailure(true) then SetDiscoveryFailure(false), only the JWKS fails.
func (s *Server) SetDiscoveryFailure(fail bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jwt.discoveryFailure = fail
}

// CurrentKID is the kid new tokens are signed with.
func (s *Server) CurrentKID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.currentKeyLocked().kid
}

// CurrentPublicKey is the public half of the current signing key.
func (s *Server) CurrentPublicKey() *rsa.PublicKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &s.currentKeyLocked().priv.PublicKey
}

// RotateKey adds a new signing key, used from now on, and returns its kid;
// the old keys stay in the JWKS.
func (s *Server) RotateKey() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.currentKeyLocked()
	return s.addKeyLocked().kid
}

// RemoveKey takes kid out of the JWKS; tokens it signed no longer resolve.
// Removing the current key makes the previous one current again (a new one
// is generated when none is left).
func (s *Server) RemoveKey(kid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jwt.keys = slices.DeleteFunc(s.jwt.keys, func(k signingKey) bool { return k.kid == kid })
}

// RevokeJWT deletes the grant of the token whose jti is jti: the resolver
// stops accepting it, though it still passes a purely local check.
func (s *Server) RevokeJWT(jti string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jwt.revoked == nil {
		s.jwt.revoked = map[string]bool{}
	}
	s.jwt.revoked[jti] = true
}

// JWTOption changes a token IssueJWT mints, for negative tests.
type JWTOption func(*jwtSpec)

type jwtSpec struct {
	header map[string]any
	claims map[string]any
	alg    string          // how to sign: RS256, RS384, RS512, PS256, HS256 or none
	key    *rsa.PrivateKey // nil: the server's key of the header's kid, else the current one
	secret []byte          // for HS256
	sig    *string         // replaces the signature segment
}

// WithClaim sets a claim; nil removes it. Times are Unix seconds.
func WithClaim(name string, value any) JWTOption {
	return func(sp *jwtSpec) { setOrDelete(sp.claims, name, value) }
}

// WithHeader sets a JOSE header parameter; nil removes it. It does not
// change how the token is signed (see SignedWith*).
func WithHeader(name string, value any) JWTOption {
	return func(sp *jwtSpec) { setOrDelete(sp.header, name, value) }
}

// WithKID sets the header's kid; a kid the server does not know is signed
// with the current key.
func WithKID(kid string) JWTOption { return WithHeader("kid", kid) }

// SignedWithRSA signs with alg (RS256, RS384, RS512 or PS256) and key (nil:
// the server's), and says alg in the header.
func SignedWithRSA(alg string, key *rsa.PrivateKey) JWTOption {
	return func(sp *jwtSpec) { sp.alg, sp.key, sp.header["alg"] = alg, key, alg }
}

// SignedWithHMAC signs with HS256 keyed with secret, and says HS256 in the
// header: the algorithm confusion attack when secret is the public key.
func SignedWithHMAC(secret []byte) JWTOption {
	return func(sp *jwtSpec) { sp.alg, sp.secret, sp.header["alg"] = "HS256", secret, "HS256" }
}

// Unsigned makes an alg none token with an empty signature.
func Unsigned() JWTOption {
	return func(sp *jwtSpec) { sp.alg, sp.header["alg"] = "none", "none" }
}

// WithSignature replaces the signature segment.
func WithSignature(sig string) JWTOption { return func(sp *jwtSpec) { sp.sig = &sig } }

func setOrDelete(m map[string]any, name string, value any) {
	if value == nil {
		delete(m, name)
	} else {
		m[name] = value
	}
}

// IssueJWT mints an access token for userID as Authgear would, with the
// user's current identity (see AddUser) in its claims, valid for
// JWTLifetime; opts change it.
func (s *Server) IssueJWT(userID string, opts ...JWTOption) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.currentKeyLocked()
	id := s.users[userID]
	now := time.Now()
	roles := id.Roles
	if roles == nil {
		roles = []string{}
	}
	sp := &jwtSpec{
		header: map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": cur.kid},
		claims: map[string]any{
			"iss":                  s.Issuer(),
			"aud":                  []string{s.Issuer()},
			"sub":                  userID,
			"iat":                  now.Unix(),
			"exp":                  now.Add(JWTLifetime).Unix(),
			"client_id":            "fake-client",
			"scope":                "openid offline_access",
			"jti":                  randomHex(16),
			ClaimIsAnonymous:       id.Anonymous,
			ClaimIsVerified:        id.Verified,
			ClaimCanReauthenticate: id.CanReauthenticate,
			ClaimRoles:             roles,
		},
		alg: "RS256",
	}
	if id.AuthenticatedAt > 0 {
		sp.claims["auth_time"] = id.AuthenticatedAt
	}
	if len(id.AMR) > 0 {
		sp.claims["amr"] = id.AMR
	}
	for _, o := range opts {
		o(sp)
	}

	h, err := json.Marshal(sp.header)
	if err != nil {
		panic(err)
	}
	c, err := json.Marshal(sp.claims)
	if err != nil {
		panic(err)
	}
	input := b64(h) + "." + b64(c)
	if sp.sig != nil {
		return input + "." + *sp.sig
	}
	key := sp.key
	if key == nil {
		key = cur.priv
		if kid, ok := sp.header["kid"].(string); ok {
			if k, ok := s.keyLocked(kid); ok {
				key = k.priv
			}
		}
	}
	return input + "." + b64(sign(sp.alg, key, sp.secret, []byte(input)))
}

func sign(alg string, key *rsa.PrivateKey, secret, input []byte) []byte {
	var sig []byte
	var err error
	switch alg {
	case "none":
		return nil
	case "HS256":
		m := hmac.New(sha256.New, secret)
		m.Write(input)
		return m.Sum(nil)
	case "RS256":
		d := sha256.Sum256(input)
		sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, d[:])
	case "RS384":
		d := sha512.Sum384(input)
		sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA384, d[:])
	case "RS512":
		d := sha512.Sum512(input)
		sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA512, d[:])
	case "PS256":
		d := sha256.Sum256(input)
		sig, err = rsa.SignPSS(rand.Reader, key, crypto.SHA256, d[:], nil)
	default:
		panic("resolvertest: cannot sign with " + alg)
	}
	if err != nil {
		panic(err)
	}
	return sig
}

// JTI returns the jti claim of a token IssueJWT minted ("" if none).
func JTI(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	var c struct {
		JTI string `json:"jti"`
	}
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	_ = json.Unmarshal(raw, &c)
	return c.JTI
}

func (s *Server) discovery(w http.ResponseWriter, r *http.Request) {
	s.discoveryFetches.Add(1)
	s.mu.Lock()
	failure := s.jwt.discoveryFailure
	s.mu.Unlock()
	if failure {
		http.Error(w, "internal server error", http.StatusInternalServerError)
		return
	}
	if projectHost(r) != s.PublicHost {
		http.Error(w, "app not found", http.StatusNotFound)
		return
	}
	iss := s.Issuer()
	writeJSON(w, map[string]any{
		"issuer": iss,
		// Real Authgear announces its public origin; the fake announces the
		// address tests can reach.
		"jwks_uri":                              s.JWKSURL(),
		"authorization_endpoint":                iss + "/oauth2/authorize",
		"token_endpoint":                        iss + "/oauth2/token",
		"userinfo_endpoint":                     iss + "/oauth2/userinfo",
		"response_types_supported":              []string{"code", "none"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
	})
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	s.jwksFetches.Add(1)
	s.mu.Lock()
	failure := s.jwt.jwksFailure
	s.currentKeyLocked()
	keys := make([]map[string]string, 0, len(s.jwt.keys))
	for _, k := range s.jwt.keys {
		pub := k.priv.PublicKey
		keys = append(keys, map[string]string{
			"kty": "RSA",
			"kid": k.kid,
			"use": "sig",
			"alg": "RS256",
			"n":   b64(pub.N.Bytes()),
			"e":   b64(big.NewInt(int64(pub.E)).Bytes()),
		})
	}
	s.mu.Unlock()
	if failure {
		http.Error(w, "internal server error", http.StatusInternalServerError)
		return
	}
	if projectHost(r) != s.PublicHost {
		http.Error(w, "app not found", http.StatusNotFound)
		return
	}
	writeJSON(w, map[string]any{"keys": keys})
}

// jwtUser accepts the fake's own JWTs as Authgear's resolver does: signature
// by a published key, expiry, aud against the project's origin, and the
// grant not revoked. It is called with s.mu held.
func (s *Server) jwtUser(token string) (string, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", false
	}
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if !decodeSegment(parts[0], &h) || h.Alg != "RS256" {
		return "", false
	}
	k, ok := s.keyLocked(h.Kid)
	if !ok {
		return "", false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return "", false
	}
	d := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(&k.priv.PublicKey, crypto.SHA256, d[:], sig) != nil {
		return "", false
	}
	var c struct {
		Sub string          `json:"sub"`
		Exp float64         `json:"exp"`
		Aud json.RawMessage `json:"aud"`
		JTI string          `json:"jti"`
	}
	if !decodeSegment(parts[1], &c) || c.Sub == "" || float64(time.Now().Unix()) >= c.Exp {
		return "", false
	}
	var auds []string
	if json.Unmarshal(c.Aud, &auds) != nil {
		var one string
		if json.Unmarshal(c.Aud, &one) != nil {
			return "", false
		}
		auds = []string{one}
	}
	if !slices.Contains(auds, s.Issuer()) || s.jwt.revoked[c.JTI] {
		return "", false
	}
	return c.Sub, true
}

func (s *Server) keyLocked(kid string) (signingKey, bool) {
	for _, k := range s.jwt.keys {
		if k.kid == kid {
			return k, true
		}
	}
	return signingKey{}, false
}

// currentKeyLocked returns the signing key, generating the first one lazily
// so that tests which never touch JWTs do not pay for RSA key generation.
func (s *Server) currentKeyLocked() signingKey {
	if len(s.jwt.keys) == 0 {
		return s.addKeyLocked()
	}
	return s.jwt.keys[len(s.jwt.keys)-1]
}

func (s *Server) addKeyLocked() signingKey {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	k := signingKey{kid: "fake-" + randomHex(8), priv: priv}
	s.jwt.keys = append(s.jwt.keys, k)
	return k
}

func decodeSegment(seg string, v any) bool {
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	return err == nil && json.Unmarshal(raw, v) == nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
