package resolver

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/httprc/v3/errsink"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// ErrInvalidToken means a JWT access token is not acceptable: malformed,
// badly signed, expired, for someone else, or signed by a key Authgear does
// not publish. The caller answers 401 with
// `WWW-Authenticate: Bearer error="invalid_token"`.
var ErrInvalidToken = errors.New("invalid access token")

// The claims Authgear puts in its access tokens beyond the registered ones.
const (
	claimIsAnonymous       = "https://authgear.com/claims/user/is_anonymous"
	claimIsVerified        = "https://authgear.com/claims/user/is_verified"
	claimCanReauthenticate = "https://authgear.com/claims/user/can_reauthenticate"
	claimRoles             = "https://authgear.com/claims/user/roles"
	claimAMR               = "amr"
	claimAuthTime          = "auth_time"
)

const (
	// MaxJWTSize bounds the tokens Verify looks at; Authgear's are about 1 KiB.
	MaxJWTSize = 16 << 10

	defaultLeeway             = 30 * time.Second
	defaultMinRefreshInterval = 30 * time.Second
	defaultRefreshInterval    = 5 * time.Minute
	// fetchTimeout bounds one discovery or JWKS fetch, whatever the
	// HTTP client's own timeout.
	fetchTimeout = 10 * time.Second
	// firstRetryDelay is the first wait after a failed start; it doubles up
	// to MinRefreshInterval.
	firstRetryDelay   = time.Second
	maxDiscoverySize  = 1 << 20
	maxJWKSSize       = 1 << 20
	minRSAModulusBits = 2048
)

// JWTConfig says whose access tokens to accept.
type JWTConfig struct {
	// Endpoint is the project's public origin, e.g.
	// https://myproject.authgear.cloud: the only accepted iss, and an
	// accepted aud.
	Endpoint *url.URL
	// DiscoveryURL is where to fetch the OpenID configuration; nil means
	// Endpoint + /.well-known/openid-configuration. When it is elsewhere (an
	// internal address), requests to its host carry the public Host,
	// X-Forwarded-Host and X-Forwarded-Proto, as resolver calls do.
	DiscoveryURL *url.URL
	// ExtraAudiences are accepted in aud besides the Endpoint origin (the
	// resource URIs of tokens bound to a resource).
	ExtraAudiences []string
	// Leeway is the allowed clock skew for nbf and iat; 0 means 30s. exp
	// has none: Authgear refuses a token from its exp on, and so do we.
	Leeway time.Duration
	// Clock is nil but in tests.
	Clock func() time.Time
	// MinRefreshInterval is the least time between two JWKS fetches made
	// because of an unknown kid (so made-up kids cannot hammer Authgear), and
	// the longest wait between retries while no keys are known yet; 0 means 30s.
	MinRefreshInterval time.Duration
	// RefreshInterval is how often the JWKS is fetched in the background
	// once known; 0 means 5 minutes.
	RefreshInterval time.Duration
}

// JWTClaims is what a good token says, beyond the decision: the jti (empty
// when absent) for deny lists, and exp.
type JWTClaims struct {
	Decision *Decision
	JTI      string
	Expires  time.Time
}

// JWTVerifier verifies Authgear's JWT access tokens locally against the
// project's published keys, kept fresh in the background.
type JWTVerifier struct {
	origin     string
	audiences  []string
	leeway     time.Duration
	now        func() time.Time
	minRefresh time.Duration
	refreshInt time.Duration
	logger     *slog.Logger
	doer       httprc.HTTPClient
	discovery  string
	cache      *jwk.Cache

	// res is the JWKS resource once registered with the cache; its value is
	// nil until the first successful fetch.
	res  atomic.Pointer[httprc.ResourceBase[jwk.Set]]
	keys atomic.Pointer[keySet]

	mu          sync.Mutex
	lastRefresh time.Time     // start of the last fetch made for an unknown kid
	inflight    chan struct{} // closed when the on-demand refresh in progress ends
	inflightErr error         // its result, valid once inflight is closed
}

// keySet is the usable keys of one fetched JWKS, by kid.
type keySet struct {
	src  jwk.Set
	keys map[string]*rsa.PublicKey
}

// NewJWTVerifier starts verifying tokens of cfg.Endpoint. Discovery and the
// first JWKS fetch happen in the background: until they succeed Verify
// answers ErrUnavailable, and they are retried until ctx ends. ctx bounds the
// verifier's background work.
func NewJWTVerifier(ctx context.Context, cfg JWTConfig, httpClient *http.Client, logger *slog.Logger) (*JWTVerifier, error) {
	if cfg.Endpoint == nil || cfg.Endpoint.Host == "" || (cfg.Endpoint.Scheme != "https" && cfg.Endpoint.Scheme != "http") {
		return nil, errors.New("jwt verifier: endpoint must be an absolute http(s) URL")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if httpClient == nil {
		httpClient = NewHTTPClient(fetchTimeout)
	}
	origin := cfg.Endpoint.Scheme + "://" + cfg.Endpoint.Host
	v := &JWTVerifier{
		origin:     origin,
		audiences:  append([]string{origin}, cfg.ExtraAudiences...),
		leeway:     cfg.Leeway,
		now:        cfg.Clock,
		minRefresh: cfg.MinRefreshInterval,
		refreshInt: cfg.RefreshInterval,
		logger:     logger,
	}
	if v.leeway <= 0 {
		v.leeway = defaultLeeway
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.minRefresh <= 0 {
		v.minRefresh = defaultMinRefreshInterval
	}
	if v.refreshInt <= 0 {
		v.refreshInt = defaultRefreshInterval
	}
	discovery := cfg.DiscoveryURL
	doer := hostDoer{client: httpClient}
	if discovery == nil {
		discovery = cfg.Endpoint.JoinPath("/.well-known/openid-configuration")
	} else if discovery.Host != cfg.Endpoint.Host {
		doer.internal, doer.public, doer.proto = discovery.Host, cfg.Endpoint.Host, cfg.Endpoint.Scheme
	}
	v.discovery = discovery.String()
	v.doer = doer

	cache, err := jwk.NewCache(ctx, httprc.NewClient(
		httprc.WithWorkers(2),
		httprc.WithHTTPClient(doer),
		httprc.WithErrorSink(errsink.NewFunc(func(ctx context.Context, err error) {
			// Background refreshes; the last good keys stay in use.
			logger.LogAttrs(ctx, slog.LevelWarn, "jwks refresh failed", slog.String("error", err.Error()))
		})),
	))
	if err != nil {
		return nil, fmt.Errorf("jwt verifier: %w", err)
	}
	v.cache = cache
	go v.start(ctx)
	return v, nil
}

// hostDoer sends requests for an internal address with the project's public
// host, since Authgear picks the project by host.
type hostDoer struct {
	client                  *http.Client
	internal, public, proto string
}

func (d hostDoer) Do(req *http.Request) (*http.Response, error) {
	if d.internal != "" && req.URL.Host == d.internal {
		req.Host = d.public
		req.Header.Set("X-Forwarded-Host", d.public)
		req.Header.Set("X-Forwarded-Proto", d.proto)
	}
	return d.client.Do(req)
}

// start discovers the JWKS and fetches it, retrying with backoff until it has
// keys; the cache then refreshes them every RefreshInterval.
func (v *JWTVerifier) start(ctx context.Context) {
	delay := min(firstRetryDelay, v.minRefresh)
	jwksURL := ""
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			delay = min(2*delay, v.minRefresh)
		}
		if jwksURL == "" {
			u, err := v.discover(ctx)
			if err != nil {
				v.logger.LogAttrs(ctx, slog.LevelWarn, "openid discovery failed", slog.String("error", err.Error()))
				continue
			}
			jwksURL = u
		}
		err := v.fetchFirst(ctx, jwksURL, delay)
		if err == nil {
			v.logger.LogAttrs(ctx, slog.LevelInfo, "jwks loaded", slog.String("jwks_uri", jwksURL))
			return
		}
		if ctx.Err() != nil {
			return
		}
		v.logger.LogAttrs(ctx, slog.LevelWarn, "jwks fetch failed", slog.String("error", err.Error()))
	}
}

// fetchFirst registers jwksURL with the cache (which fetches it at once),
// or, when already registered, fetches it again; it reports whether keys are
// now known, waiting at most wait for the cache's own first fetch.
func (v *JWTVerifier) fetchFirst(ctx context.Context, jwksURL string, wait time.Duration) error {
	r := v.res.Load()
	if r == nil {
		err := v.cache.Register(ctx, jwksURL,
			jwk.WithWaitReady(false),
			jwk.WithHTTPClient(v.doer),
			jwk.WithMaxFetchBodySize(maxJWKSSize),
			jwk.WithConstantInterval(v.refreshInt),
			jwk.WithMinInterval(v.refreshInt),
		)
		if err != nil {
			return err
		}
		if r, err = v.cache.LookupResource(ctx, jwksURL); err != nil {
			return err
		}
		v.res.Store(r)
		wctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		if r.Ready(wctx) == nil {
			return nil
		}
		return errors.New("no JWKS yet")
	}
	if r.Resource() != nil {
		return nil
	}
	fctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	_, err := v.cache.Refresh(fctx, jwksURL)
	return err
}

// discover reads jwks_uri from the OpenID configuration, whose issuer must
// be the endpoint's origin.
func (v *JWTVerifier) discover(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.discovery, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.doer.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDiscoverySize+1))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("discovery: status %d", resp.StatusCode)
	}
	if len(body) > maxDiscoverySize {
		return "", errors.New("discovery: document too large")
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	if doc.Issuer != v.origin {
		return "", fmt.Errorf("discovery: issuer is %q, want %q", doc.Issuer, v.origin)
	}
	u, err := url.Parse(doc.JWKSURI)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("discovery: bad jwks_uri %q", doc.JWKSURI)
	}
	// Plain http only when discovery itself was (an internal address).
	if u.Scheme == "http" && !strings.HasPrefix(v.discovery, "http:") {
		return "", fmt.Errorf("discovery: jwks_uri %q is not https", doc.JWKSURI)
	}
	return u.String(), nil
}

// Ready reports whether keys are known, i.e. whether Verify can answer
// other than ErrUnavailable.
func (v *JWTVerifier) Ready() bool { return v.currentKeys() != nil }

// currentKeys is the usable keys of the last good JWKS; nil before the first.
func (v *JWTVerifier) currentKeys() *keySet {
	r := v.res.Load()
	if r == nil {
		return nil
	}
	set := r.Resource()
	if set == nil {
		return nil
	}
	if ks := v.keys.Load(); ks != nil && ks.src == set {
		return ks
	}
	ks := &keySet{src: set, keys: make(map[string]*rsa.PublicKey, set.Len())}
	for i := range set.Len() {
		k, _ := set.Key(i)
		if pub := usableKey(k); pub != nil {
			kid, _ := k.KeyID()
			if _, dup := ks.keys[kid]; !dup {
				ks.keys[kid] = pub
			}
		}
	}
	v.keys.Store(ks)
	return ks
}

// usableKey returns k's RSA public key when it can verify RS256 signatures:
// it has a kid, is RSA of at least 2048 bits, and neither its alg nor its use
// says otherwise.
func usableKey(k jwk.Key) *rsa.PublicKey {
	if k == nil || k.KeyType().String() != jwa.RSA().String() {
		return nil
	}
	if kid, _ := k.KeyID(); kid == "" {
		return nil
	}
	if alg, ok := k.Algorithm(); ok && alg.String() != jwa.RS256().String() {
		return nil
	}
	if use, ok := k.KeyUsage(); ok && use != "sig" {
		return nil
	}
	var raw any
	if err := jwk.Export(k, &raw); err != nil {
		return nil
	}
	var pub *rsa.PublicKey
	switch raw := raw.(type) {
	case *rsa.PublicKey:
		pub = raw
	case *rsa.PrivateKey:
		pub = &raw.PublicKey
	default:
		return nil
	}
	if pub.N == nil || pub.N.BitLen() < minRSAModulusBits {
		return nil
	}
	return pub
}

// errRateLimited: an unknown kid came too soon after the last refresh.
var errRateLimited = errors.New("jwks refreshed recently")

// refresh fetches the JWKS again because of an unknown kid, at most once per
// MinRefreshInterval; concurrent callers share one fetch.
func (v *JWTVerifier) refresh(ctx context.Context) error {
	r := v.res.Load()
	if r == nil {
		return errors.New("jwks not registered")
	}
	v.mu.Lock()
	if ch := v.inflight; ch != nil {
		v.mu.Unlock()
		select {
		case <-ch:
			v.mu.Lock()
			defer v.mu.Unlock()
			return v.inflightErr
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if time.Since(v.lastRefresh) < v.minRefresh {
		v.mu.Unlock()
		return errRateLimited
	}
	ch := make(chan struct{})
	v.inflight = ch
	v.lastRefresh = time.Now()
	v.mu.Unlock()

	// Others may wait on this fetch: it must not end with the caller's request.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	_, err := v.cache.Refresh(fctx, r.URL())
	cancel()
	if err != nil {
		v.logger.LogAttrs(ctx, slog.LevelWarn, "jwks refresh for unknown kid failed", slog.String("error", err.Error()))
	}

	v.mu.Lock()
	v.inflight = nil
	v.inflightErr = err
	close(ch)
	v.mu.Unlock()
	return err
}

// Verify checks a JWT access token. A good one gives an allow until its exp;
// a bad one an error wrapping ErrInvalidToken; ErrUnavailable when the
// project's keys are not known (yet).
func (v *JWTVerifier) Verify(ctx context.Context, token string) (*Decision, error) {
	c, err := v.VerifyClaims(ctx, token)
	if err != nil {
		return nil, err
	}
	return c.Decision, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidToken, fmt.Sprintf(format, args...))
}

// VerifyClaims is Verify, also returning the token's jti and exp.
func (v *JWTVerifier) VerifyClaims(ctx context.Context, token string) (*JWTClaims, error) {
	if len(token) > MaxJWTSize {
		return nil, invalid("token larger than %d bytes", MaxJWTSize)
	}
	if !LooksLikeJWT(token) {
		return nil, invalid("not a compact JWS")
	}
	kid, err := checkHeader(token[:strings.IndexByte(token, '.')])
	if err != nil {
		return nil, err
	}

	ks := v.currentKeys()
	if ks == nil {
		return nil, fmt.Errorf("%w: signing keys not loaded yet", ErrUnavailable)
	}
	key, ok := ks.keys[kid]
	if !ok {
		switch err := v.refresh(ctx); {
		case errors.Is(err, errRateLimited):
			return nil, invalid("unknown kid")
		case err != nil:
			// A key we could not fetch may be real: the truth is unknown.
			return nil, fmt.Errorf("%w: unknown kid and JWKS refresh failed: %v", ErrUnavailable, err)
		}
		if ks = v.currentKeys(); ks == nil {
			return nil, fmt.Errorf("%w: signing keys not loaded", ErrUnavailable)
		}
		if key, ok = ks.keys[kid]; !ok {
			return nil, invalid("unknown kid")
		}
	}

	// jwt.Parse with one WithKey and no suboptions takes jwx's fast path,
	// which also insists that the header's alg is RS256.
	tok, err := jwt.Parse([]byte(token),
		jwt.WithKey(jwa.RS256(), key),
		jwt.WithAcceptableSkew(v.leeway), // nbf and iat; exp is checked below without it
		jwt.WithClock(jwt.ClockFunc(v.now)),
		jwt.WithIssuer(v.origin),
		jwt.WithRequiredClaim(jwt.SubjectKey),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
		jwt.WithRequiredClaim(jwt.AudienceKey),
		jwt.WithValidator(jwt.ValidatorFunc(v.validateAudience)),
		jwt.WithValidator(jwt.ValidatorFunc(v.validateExpiry)),
	)
	if err != nil {
		return nil, invalid("%v", err)
	}
	return claimsOf(tok)
}

// validateExpiry refuses a token from its exp on, with no leeway, as
// Authgear's resolver does: an allow must never outlive the token.
func (v *JWTVerifier) validateExpiry(_ context.Context, tok jwt.Token) error {
	exp, ok := tok.Expiration()
	if !ok || !v.now().Before(exp) {
		return errors.New(`"exp" not satisfied: the token has expired`)
	}
	return nil
}

func (v *JWTVerifier) validateAudience(_ context.Context, tok jwt.Token) error {
	auds, _ := tok.Audience()
	for _, a := range auds {
		for _, want := range v.audiences {
			if a == want {
				return nil
			}
		}
	}
	return errors.New("aud not accepted")
}

// checkHeader allows only what Authgear issues: alg RS256, typ at+jwt, a kid.
func checkHeader(segment string) (kid string, err error) {
	raw, err := base64.RawURLEncoding.DecodeString(segment)
	if err != nil {
		return "", invalid("header is not base64url")
	}
	// A map, not a struct: encoding/json matches struct fields without regard
	// to case, so {"typ":"JWT","Typ":"at+jwt"} would pass as at+jwt.
	var h map[string]json.RawMessage
	if err := json.Unmarshal(raw, &h); err != nil {
		return "", invalid("header is not a JSON object")
	}
	str := func(name string) string {
		var s string
		if m, ok := h[name]; ok && json.Unmarshal(m, &s) == nil {
			return s
		}
		return ""
	}
	if alg := str("alg"); alg != "RS256" {
		return "", invalid("alg %q not accepted", alg)
	}
	if typ := str("typ"); !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt") {
		return "", invalid("typ %q not accepted", typ)
	}
	if kid = str("kid"); kid == "" {
		return "", invalid("no kid")
	}
	return kid, nil
}

// claimsOf builds the identity the resolver would give for the same user.
func claimsOf(tok jwt.Token) (*JWTClaims, error) {
	var id Identity
	id.UserID, _ = tok.Subject()
	if id.UserID == "" {
		return nil, invalid("empty sub")
	}
	var err error
	if id.Anonymous, err = boolClaim(tok, claimIsAnonymous); err != nil {
		return nil, err
	}
	if id.Verified, err = boolClaim(tok, claimIsVerified); err != nil {
		return nil, err
	}
	if id.CanReauthenticate, err = boolClaim(tok, claimCanReauthenticate); err != nil {
		return nil, err
	}
	if id.Roles, err = stringsClaim(tok, claimRoles); err != nil {
		return nil, err
	}
	if id.AMR, err = stringsClaim(tok, claimAMR); err != nil {
		return nil, err
	}
	if id.AuthenticatedAt, err = unixClaim(tok, claimAuthTime); err != nil {
		return nil, err
	}
	if !validIdentity(id) {
		return nil, invalid("claim with forbidden bytes")
	}
	exp, _ := tok.Expiration()
	jti, _ := tok.JwtID()
	if !validHeaderValue(jti) {
		return nil, invalid("jti with forbidden bytes")
	}
	iat, _ := tok.IssuedAt()
	d := Allow(id, exp)
	d.TokenID, d.IssuedAt = jti, iat
	return &JWTClaims{Decision: d, JTI: jti, Expires: exp}, nil
}

// claim returns a private claim as decoded from JSON; nil when absent.
func claim(tok jwt.Token, name string) any {
	var v any
	if err := tok.Get(name, &v); err != nil {
		return nil
	}
	return v
}

// boolClaim reads a boolean claim; absent is false, anything but a JSON
// boolean is invalid.
func boolClaim(tok jwt.Token, name string) (bool, error) {
	switch v := claim(tok, name).(type) {
	case nil:
		return false, nil
	case bool:
		return v, nil
	default:
		return false, invalid("claim %s is not a boolean", name)
	}
}

// stringsClaim reads an array of strings; absent or empty is nil.
func stringsClaim(tok jwt.Token, name string) ([]string, error) {
	switch v := claim(tok, name).(type) {
	case nil:
		return nil, nil
	case []string:
		if len(v) == 0 {
			return nil, nil
		}
		return v, nil
	case []any:
		if len(v) == 0 {
			return nil, nil
		}
		out := make([]string, len(v))
		for i, e := range v {
			s, ok := e.(string)
			if !ok || s == "" {
				return nil, invalid("claim %s is not an array of strings", name)
			}
			out[i] = s
		}
		return out, nil
	default:
		return nil, invalid("claim %s is not an array of strings", name)
	}
}

// unixClaim reads a NumericDate as whole seconds; absent is 0.
func unixClaim(tok jwt.Token, name string) (int64, error) {
	var f float64
	switch v := claim(tok, name).(type) {
	case nil:
		return 0, nil
	case float64:
		f = v
	case json.Number:
		var err error
		if f, err = v.Float64(); err != nil {
			return 0, invalid("claim %s is not a number", name)
		}
	default:
		return 0, invalid("claim %s is not a number", name)
	}
	if f < 0 || f > math.MaxInt64/2 || math.IsNaN(f) {
		return 0, invalid("claim %s out of range", name)
	}
	return int64(f), nil
}

// JWTResolver answers from the token alone: an allow for a good JWT, a deny
// for a bad one, an error while no keys are known. It lets a cache hold
// verified tokens like resolver answers.
type JWTResolver struct{ V *JWTVerifier }

// Resolve verifies req.Bearer.
func (r JWTResolver) Resolve(ctx context.Context, req Request) (*Decision, error) {
	c, err := r.V.VerifyClaims(ctx, req.Bearer)
	switch {
	case errors.Is(err, ErrInvalidToken):
		return Deny(), nil
	case err != nil:
		return nil, err
	}
	return c.Decision, nil
}

// LooksLikeJWT reports whether token has the shape of a compact JWS: three
// base64url segments separated by dots, the signature possibly empty (an
// unsigned "alg: none" token is a JWT too, to be refused here). Opaque
// Authgear tokens do not, and go to the resolver instead.
func LooksLikeJWT(token string) bool {
	dots, segLen := 0, 0
	for i := 0; i < len(token); i++ {
		c := token[i]
		switch {
		case base64URLByte[c]:
			segLen++
		case c == '.' && segLen > 0:
			dots++
			segLen = 0
		default:
			return false
		}
	}
	return dots == 2
}

// base64URLByte is the alphabet of a JWS segment; a table, since tokens are
// long and checked on every request.
var base64URLByte = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") {
		t[c] = true
	}
	return t
}()
