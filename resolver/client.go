package resolver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
)

// ErrUnavailable means Authgear gave no usable answer (refused, timed out,
// answered 5xx or something malformed): the truth is unknown, so the caller
// must neither allow nor deny.
var ErrUnavailable = errors.New("authgear resolver unavailable")

// Credentials are the values Authgear's resolver reads, in the order it tries
// them. Only these are ever forwarded; they are secrets and never logged.
type Credentials struct {
	Bearer         string // the token of "Authorization: Bearer <token>"
	AppSession     string // cookie app_session
	AppAccessToken string // cookie app_access_token
	Session        string // cookie session (the IdP session)
}

// Empty reports whether no credential at all was sent.
func (c Credentials) Empty() bool {
	return c.Bearer == "" && c.AppSession == "" && c.AppAccessToken == "" && c.Session == ""
}

// Request is one question for the resolver: the credentials and what the
// resolver records about the client.
type Request struct {
	Credentials
	ForwardedFor string
	UserAgent    string

	// Where the request came from, for per-client budgets and fair queueing;
	// never sent to Authgear. Peer is the address of whoever called this
	// service (a gateway, usually), Header the headers it sent (read only).
	Peer   string
	Header http.Header
	// Client is the original client (its /64 for IPv6) once worked out from
	// the above; the zero Prefix when unknown.
	Client netip.Prefix
}

// ClientConfig says where the resolver is and how to present ourselves to it.
type ClientConfig struct {
	// Endpoint is the project's public origin, e.g. https://myproject.authgear.cloud.
	Endpoint *url.URL
	// ResolverURL is where to send the call; nil means Endpoint + /_resolver/resolve.
	ResolverURL  *url.URL
	CookiePrefix string
	Timeout      time.Duration
	// PropagateTrace sends the caller's span as a W3C traceparent (and
	// tracestate), so that Authgear's spans join the request's trace.
	PropagateTrace bool
}

// Client calls Authgear's Resolver Endpoint.
type Client struct {
	httpClient *http.Client
	url        string
	host       string // the public host, sent as Host and X-Forwarded-Host
	proto      string
	cookieName [3]string // app_session, app_access_token, session, with prefix
	timeout    time.Duration
	logger     *slog.Logger
	propagate  bool

	calls    *prometheus.CounterVec
	duration prometheus.Histogram
}

// maxDrain bounds how much of a resolver body is read: it should be empty,
// and reading it (a little) lets the connection be reused.
const maxDrain = 64 << 10

// NewHTTPClient returns the shared client for calls to Authgear: keep-alive
// with a pool large enough that a burst of misses does not open a connection
// each.
func NewHTTPClient(timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           512,
		MaxIdleConnsPerHost:    256,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    timeout,
		ResponseHeaderTimeout:  timeout,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		// The resolver never redirects; following one would send credentials elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// NewClient returns a resolver client. reg receives its metrics.
func NewClient(cfg ClientConfig, httpClient *http.Client, logger *slog.Logger, reg prometheus.Registerer) *Client {
	target := cfg.ResolverURL
	if target == nil {
		target = cfg.Endpoint.JoinPath("/_resolver/resolve")
	}
	c := &Client{
		httpClient: httpClient,
		url:        target.String(),
		host:       cfg.Endpoint.Host,
		proto:      cfg.Endpoint.Scheme,
		cookieName: [3]string{
			cfg.CookiePrefix + "app_session",
			cfg.CookiePrefix + "app_access_token",
			cfg.CookiePrefix + "session",
		},
		timeout:   cfg.Timeout,
		logger:    logger,
		propagate: cfg.PropagateTrace,
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "forwardauth_resolver_calls_total",
			Help: "Calls to Authgear's resolver by result: allow, deny, or error.",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "forwardauth_resolver_duration_seconds",
			Help:    "Latency of calls to Authgear's resolver.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
	}
	reg.MustRegister(c.calls, c.duration)
	return c
}

// Resolve asks Authgear who is behind req's credentials.
func (c *Client) Resolve(ctx context.Context, req Request) (*Decision, error) {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	start := time.Now()
	d, status, err := c.resolve(ctx, req)
	elapsed := time.Since(start)
	c.duration.Observe(elapsed.Seconds())
	result := "error"
	switch {
	case err != nil:
	case d.Allow:
		result = "allow"
	default:
		result = "deny"
	}
	c.calls.WithLabelValues(result).Inc()
	if err != nil {
		c.logger.LogAttrs(ctx, slog.LevelWarn, "resolver call failed",
			slog.Int("status", status), slog.Duration("duration", elapsed), slog.String("error", err.Error()))
		return nil, err
	}
	c.logger.LogAttrs(ctx, slog.LevelInfo, "resolver call",
		slog.String("result", result), slog.Duration("duration", elapsed))
	return d, nil
}

func (c *Client) resolve(ctx context.Context, req Request) (*Decision, int, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	// Authgear picks the project by X-Forwarded-Host (then Host) and the scheme
	// by X-Forwarded-Proto, so these are the public ones even when the call
	// goes to an internal address.
	hreq.Host = c.host
	h := hreq.Header
	h["X-Forwarded-Host"] = []string{c.host}
	h["X-Forwarded-Proto"] = []string{c.proto}
	if req.Bearer != "" {
		h["Authorization"] = []string{"Bearer " + req.Bearer}
	}
	if cookie := c.cookieHeader(req.Credentials); cookie != "" {
		h["Cookie"] = []string{cookie}
	}
	if req.ForwardedFor != "" {
		h["X-Forwarded-For"] = []string{req.ForwardedFor}
	}
	// Set even when empty so Go's default User-Agent is not recorded as the client's.
	h["User-Agent"] = []string{req.UserAgent}
	if c.propagate {
		propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(h))
	}

	resp, err := c.httpClient.Do(hreq)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	if resp.StatusCode != http.StatusOK {
		// Authgear's resolver answers 200 for every credential, good or bad; any
		// other status (500, or 404 "app not found" for a wrong host) says nothing
		// about the credential.
		return nil, resp.StatusCode, fmt.Errorf("%w: status %d", ErrUnavailable, resp.StatusCode)
	}
	d, err := decisionFromHeader(resp.Header)
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if d.Allow && req.Bearer != "" {
		// A JWT access token stops being valid at its exp, whatever the cache's
		// TTL. Authgear has just checked its signature (or the answer came
		// from another credential, and a cap only shortens caching).
		d.Expires = unverifiedExpiry(req.Bearer)
	}
	return d, resp.StatusCode, nil
}

func (c *Client) cookieHeader(cr Credentials) string {
	var b strings.Builder
	add := func(name, value string) {
		if value == "" {
			return
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(value)
	}
	add(c.cookieName[0], cr.AppSession)
	add(c.cookieName[1], cr.AppAccessToken)
	add(c.cookieName[2], cr.Session)
	return b.String()
}

// decisionFromHeader reads a 200 answer of the resolver. Only
// X-Authgear-Session-Valid: true means authenticated; "false" or no header at
// all means the credentials were absent, bad, expired or revoked.
func decisionFromHeader(h http.Header) (*Decision, error) {
	valid := h.Values(HeaderSessionValid)
	switch {
	case len(valid) == 0:
		return Deny(), nil
	case len(valid) > 1:
		return nil, errors.New("several X-Authgear-Session-Valid headers")
	case valid[0] == "false":
		return Deny(), nil
	case valid[0] != "true":
		return nil, fmt.Errorf("X-Authgear-Session-Valid is %q", valid[0])
	}
	var id Identity
	var err error
	id.UserID = h.Get(HeaderUserID)
	if id.UserID == "" {
		return nil, errors.New("valid session without X-Authgear-User-Id")
	}
	if id.Anonymous, err = parseBool(h, HeaderUserAnonymous); err != nil {
		return nil, err
	}
	if id.Verified, err = parseBool(h, HeaderUserVerified); err != nil {
		return nil, err
	}
	if id.CanReauthenticate, err = parseBool(h, HeaderUserCanReauth); err != nil {
		return nil, err
	}
	if roles := h.Get(HeaderUserRoles); roles != "" {
		id.Roles = strings.Split(roles, ",")
	}
	if amr := h.Get(HeaderSessionAMR); amr != "" {
		id.AMR = strings.Split(amr, " ")
	}
	if at := h.Get(HeaderSessionAuthTime); at != "" {
		if id.AuthenticatedAt, err = strconv.ParseInt(at, 10, 64); err != nil || id.AuthenticatedAt < 0 {
			return nil, fmt.Errorf("%s is %q", HeaderSessionAuthTime, at)
		}
	}
	if !validIdentity(id) {
		return nil, errors.New("identity headers with forbidden bytes")
	}
	return Allow(id, time.Time{}), nil
}

// unverifiedExpiry reads the exp claim of a JWT without checking it; zero
// when token is not a JWT with an exp.
func unverifiedExpiry(token string) time.Time {
	_, exp := UnverifiedTokenID(token)
	return exp
}

// UnverifiedTokenID reads the jti and exp claims of a JWT without checking
// it (for a token an admin hands in to be revoked); empty when token is not
// a JWT.
func UnverifiedTokenID(token string) (jti string, exp time.Time) {
	_, rest, ok := strings.Cut(token, ".")
	if !ok {
		return "", time.Time{}
	}
	payload, _, ok := strings.Cut(rest, ".")
	if !ok || len(payload) > maxDrain {
		return "", time.Time{}
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return "", time.Time{}
	}
	var claims struct {
		Exp json.Number `json:"exp"`
		JTI string      `json:"jti"`
	}
	if json.Unmarshal(raw, &claims) != nil {
		return "", time.Time{}
	}
	if !validHeaderValue(claims.JTI) {
		claims.JTI = ""
	}
	if e, err := claims.Exp.Float64(); err == nil && e > 0 {
		exp = time.Unix(int64(e), 0)
	}
	return claims.JTI, exp
}

// parseBool reads a "true"/"false" header; absent is false.
func parseBool(h http.Header, name string) (bool, error) {
	switch v := h.Get(name); v {
	case "true":
		return true, nil
	case "false", "":
		return false, nil
	default:
		return false, fmt.Errorf("%s is %q", name, v)
	}
}
