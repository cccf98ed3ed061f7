package handler

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/authgear/authgear-forwardauth/internal/stripedcounter"
	"github.com/authgear/authgear-forwardauth/resolver"
	"github.com/authgear/authgear-forwardauth/tracing"
)

// Decider answers who is behind a request's credentials. An error means the
// answer is unknown.
type Decider interface {
	Decide(ctx context.Context, req resolver.Request) (*resolver.Decision, error)
}

// AuthConfig is how /auth reads requests and answers refusals.
type AuthConfig struct {
	CookiePrefix string
	// TrustedProxies may describe the original request (X-Original-*,
	// X-Forwarded-*); from anyone else those headers are ignored.
	TrustedProxies []netip.Prefix
	// AllowPreflight lets CORS preflights (OPTIONS with
	// Access-Control-Request-Method) through without credentials.
	AllowPreflight bool
	Login          LoginConfig
	JWT            JWTConfig
	// Assertion, when not nil, signs every allow's identity for the
	// original host (X-Authgear-Jwt-Assertion).
	Assertion Asserter
	// Shapes: which credentials may cost a cache lookup and a resolver call.
	Shapes CredentialShapes
}

// JWTMode is how Bearer JWTs are checked.
type JWTMode int

const (
	// JWTOff: every credential goes to Authgear's resolver (through the cache).
	JWTOff JWTMode = iota
	// JWTLocal: a JWT is verified here and never costs a resolver call.
	JWTLocal
	// JWTHybrid: verified here first, so a forged or expired one costs no
	// resolver call, then confirmed with the resolver through the cache, so a
	// revoked grant is caught within CACHE_TTL.
	JWTHybrid
)

// JWTConfig is local verification of JWT access tokens.
type JWTConfig struct {
	Mode JWTMode
	// Verified answers from the token alone (a cache in front of the verifier).
	Verified VerifiedTokens
	// Deny blocks tokens revoked since they were issued.
	Deny interface {
		Blocks(*resolver.Decision) bool
	}
}

// VerifiedTokens answers JWTs from local verification.
type VerifiedTokens interface {
	Decider
	// Lookup returns the answer held for exactly token, verifying nothing.
	Lookup(token string) (*resolver.Decision, bool)
}

// Values shared by every response; headers are assigned, never appended to.
var (
	challenge             = []string{`Bearer`}
	challengeInvalidToken = []string{`Bearer error="invalid_token"`}
	emptyValue            = []string{""}
	falseValue            = []string{"false"}
	trueValue             = []string{"true"}
)

// headerStale marks an allow served past its TTL while Authgear fails.
const headerStale = "X-Forwardauth-Stale"

type decisionCounters struct {
	allow, anonymous, deny, forbidden, noCredential, malformed, unavailable, preflight, policyError outcome
	jwtInvalid, jwtRevoked, badPath, forgedHeader                                                   outcome
	misshapen, rateLimited, notPreflight                                                            outcome
}

func newDecisionCounters(reg prometheus.Registerer, traced bool) decisionCounters {
	v := stripedcounter.NewCounterVec(prometheus.CounterOpts{
		Name: "forwardauth_decisions_total",
		Help: "Answers of /auth by outcome.",
	}, []string{"outcome"})
	reg.MustRegister(v)
	o := newOutcome(v, traced)
	return decisionCounters{
		allow:        o("allow"),
		anonymous:    o("optional_anonymous"),
		deny:         o("deny"),
		forbidden:    o("forbidden"),
		noCredential: o("no_credential"),
		malformed:    o("malformed"),
		unavailable:  o("unavailable"),
		preflight:    o("preflight"),
		policyError:  o("policy_error"),
		jwtInvalid:   o("jwt_invalid", tracing.TierJWT),
		jwtRevoked:   o("jwt_revoked", tracing.TierJWT),
		badPath:      o("bad_path"),
		forgedHeader: o("forged_header"),
		misshapen:    o("misshapen"),
		rateLimited:  o("rate_limited"),
		notPreflight: o("not_preflight"),
	}
}

// handleAuth answers a gateway's sub-request: 200 with the identity headers,
// 401 (or a sign-in redirect), 403 when the route's policy refuses a known
// user, 503 when Authgear's answer is unknown, 500 for a broken policy.
func handleAuth(cfg AuthConfig, decider Decider, logger *slog.Logger, reg prometheus.Registerer, traced bool) http.Handler {
	names := newCookieNames(cfg.CookiePrefix)
	shapes := cfg.Shapes.checker()
	count := newDecisionCounters(reg, traced)
	var known policies
	assert := newAssert(cfg, logger)
	noIdentity := setNoIdentity
	if cfg.Assertion != nil {
		noIdentity = setNoIdentityNorAssertion
	}

	// refuse answers a request without a valid credential: a sign-in
	// redirect for a browser, else 401.
	refuse := func(w http.ResponseWriter, r *http.Request, bearer bool) {
		if cfg.Login.enabled() && trusted(r, cfg.TrustedProxies) {
			o := readOriginal(r.Header)
			if browserNavigation(o.method, r.Header) {
				if loc := cfg.Login.location(o.url); loc != "" {
					w.Header().Set("Location", loc)
					if o.nginx {
						unauthorized(w, bearer) // the shipped nginx config turns it into a redirect
					} else {
						w.WriteHeader(http.StatusFound)
					}
					return
				}
			}
		}
		unauthorized(w, bearer)
	}

	// noValidCredential answers when nobody is signed in.
	noValidCredential := func(w http.ResponseWriter, r *http.Request, route routePolicy, bearer bool) {
		if route.optional() {
			count.anonymous.Inc(r)
			noIdentity(w.Header())
			w.WriteHeader(http.StatusOK)
			return
		}
		refuse(w, r, bearer)
	}

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := readHeaders(r.Header)
		if h.identityHeader {
			count.forgedHeader.Inc(r)
			http.Error(w, "identity header from the client", http.StatusBadRequest)
			return
		}
		// Trust belongs to the connection; it is looked up only for a request
		// that describes an original one, or whose answer depends on it.
		if h.ambiguousOriginal() && trusted(r, cfg.TrustedProxies) {
			count.badPath.Inc(r)
			http.Error(w, "ambiguous path", http.StatusBadRequest)
			return
		}
		route := routePolicy{n: 1}
		if r.URL.RawQuery != "" {
			var origQuery string
			if trusted(r, cfg.TrustedProxies) {
				origQuery = originalQuery(first(h.xForwardedURI))
			}
			var err error
			if route, err = known.routePolicies(r.URL.RawQuery, origQuery); err != nil {
				// The operator's typo: fail closed, loudly.
				count.policyError.Inc(r)
				logger.LogAttrs(r.Context(), slog.LevelError, "bad policy on the auth URL", slog.String("error", clip(err.Error())))
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		if traced {
			tracePolicy(r, route)
		}
		if cfg.AllowPreflight && first(h.accessControlRequestMethod) != "" &&
			trusted(r, cfg.TrustedProxies) && realPreflight(r, readOriginal(r.Header)) {
			count.preflight.Inc(r)
			noIdentity(w.Header())
			w.WriteHeader(http.StatusOK)
			return
		}
		if route.preflightOnly() {
			// A location for preflights alone: what is not one is refused
			// before its credentials cost anything.
			count.notPreflight.Inc(r)
			http.Error(w, "only a CORS preflight may use this route", http.StatusForbidden)
			return
		}

		d := verifiedHit(cfg.JWT, h.authorization)
		bearer := d != nil
		if bearer && traced {
			trace.SpanFromContext(r.Context()).SetAttributes(tracing.TierJWT)
		}
		var creds resolver.Credentials
		var err error
		if d == nil {
			var misshapen bool
			creds, bearer, misshapen, err = credentialsOf(h.authorization, h.cookie, names, shapes)
			switch {
			case err != nil:
				count.malformed.Inc(r)
			case creds.Empty() && misshapen:
				count.misshapen.Inc(r)
			case creds.Empty():
				count.noCredential.Inc(r)
			}
			if err != nil || creds.Empty() {
				noValidCredential(w, r, route, bearer || err != nil)
				return
			}
		}

		if d == nil && cfg.JWT.Mode != JWTOff && creds.Bearer != "" && isJWT(creds.Bearer, shapes) {
			jd, err := cfg.JWT.Verified.Decide(r.Context(), resolver.Request{Credentials: resolver.Credentials{Bearer: creds.Bearer}})
			switch {
			case err != nil:
				// No keys yet (JWKS unreachable): Authgear can still tell.
			case !jd.Allow && creds.AppSession == "" && creds.AppAccessToken == "" && creds.Session == "":
				count.jwtInvalid.Inc(r)
				noValidCredential(w, r, route, true)
				return
			case !jd.Allow:
				// Authgear would go on to the cookies: so do we.
			case cfg.JWT.Deny.Blocks(jd):
				count.jwtRevoked.Inc(r)
				noValidCredential(w, r, route, true)
				return
			case cfg.JWT.Mode == JWTLocal:
				d = jd
				if traced {
					trace.SpanFromContext(r.Context()).SetAttributes(tracing.TierJWT)
				}
			}
		}

		if d == nil {
			req := resolver.Request{Credentials: creds, Peer: r.RemoteAddr, Header: r.Header}
			if xff := r.Header["X-Forwarded-For"]; len(xff) > 0 {
				req.ForwardedFor = xff[0]
			}
			if ua := r.Header["User-Agent"]; len(ua) > 0 {
				req.UserAgent = ua[0]
			}
			d, err = decider.Decide(r.Context(), req)
		}
		switch {
		case err != nil && overBudget(w, err):
			count.rateLimited.Inc(r)
		case err != nil:
			count.unavailable.Inc(r)
			if !errors.Is(err, context.Canceled) {
				logger.LogAttrs(r.Context(), slog.LevelDebug, "answering 503", slog.String("error", err.Error()))
			}
			http.Error(w, "authentication service unavailable", http.StatusServiceUnavailable)
		case !d.Allow && route.optional():
			count.anonymous.Inc(r)
			noIdentity(w.Header())
			w.WriteHeader(http.StatusOK)
		case !d.Allow:
			count.deny.Inc(r)
			refuse(w, r, bearer)
		case !route.permits(d.Identity):
			count.forbidden.Inc(r)
			w.WriteHeader(http.StatusForbidden)
		default:
			var assertion []string
			if cfg.Assertion != nil {
				if assertion = assert(w, r, &h, d); assertion == nil {
					return // answered 500
				}
			}
			count.allow.Inc(r)
			d.SetHeader(w.Header())
			if assertion != nil {
				w.Header()[HeaderJWTAssertion] = assertion
			}
			if d.Stale {
				w.Header()[headerStale] = trueValue
			}
			w.WriteHeader(http.StatusOK)
		}
	})
}

// verifiedHit is the allow for a request whose one Authorization header is a
// Bearer JWT this process verified and still holds, matched byte for byte,
// with JWT_VERIFY=true: Authgear tries the Bearer first, and a token that
// was verified is well formed, so nothing else in the request is read.
func verifiedHit(cfg JWTConfig, auth []string) *resolver.Decision {
	if cfg.Mode != JWTLocal {
		return nil
	}
	if len(auth) != 1 {
		return nil
	}
	scheme, token, _ := strings.Cut(auth[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return nil
	}
	token = strings.Trim(token, " ")
	if len(token) <= resolver.OpaqueTokenLen {
		return nil
	}
	d, ok := cfg.Verified.Lookup(token)
	if !ok || !d.Allow || cfg.Deny.Blocks(d) {
		return nil // the full path answers (and counts) it
	}
	return d
}

// isJWT tells a JWT Bearer from an opaque one: with shapes checked, a Bearer
// is one or the other.
func isJWT(token string, shapes *resolver.Shapes) bool {
	if shapes != nil {
		return len(token) != resolver.OpaqueTokenLen
	}
	return resolver.LooksLikeJWT(token)
}

// checker returns the shape check for s; nil checks nothing.
func (s CredentialShapes) checker() *resolver.Shapes {
	if s == ShapesAny {
		return nil
	}
	return &resolver.Shapes{}
}

// overBudget answers 429 when err says the client spent its budget of
// resolver calls, with Retry-After in whole seconds.
func overBudget(w http.ResponseWriter, err error) bool {
	var limited interface{ RetryAfter() time.Duration }
	if !errors.As(err, &limited) {
		return false
	}
	secs := int64((limited.RetryAfter() + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
	http.Error(w, "too many new credentials from this client", http.StatusTooManyRequests)
	return true
}

func unauthorized(w http.ResponseWriter, bearer bool) {
	if bearer {
		w.Header()["Www-Authenticate"] = challengeInvalidToken
	} else {
		w.Header()["Www-Authenticate"] = challenge
	}
	w.WriteHeader(http.StatusUnauthorized)
}

// setNoIdentity sets every identity header empty (and the session not
// valid), so that a gateway copying them overwrites a client's own.
func setNoIdentity(h http.Header) {
	for _, name := range resolver.IdentityHeaders() {
		h[name] = emptyValue
	}
	h[resolver.HeaderSessionValid] = falseValue
}
