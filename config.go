package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/authgear/authgear-forwardauth/assertion"
	"github.com/authgear/authgear-forwardauth/handler"
)

// config is read from the environment. The envconfig tags are the single
// description of every variable: -h prints them with envconfig.Usage.
type config struct {
	AuthgearEndpoint    string `envconfig:"AUTHGEAR_ENDPOINT" required:"true" desc:"the project's public origin, e.g. https://myproject.authgear.cloud"`
	AuthgearResolverURL string `envconfig:"AUTHGEAR_RESOLVER_URL" desc:"where to call the resolver (default: AUTHGEAR_ENDPOINT/_resolver/resolve); the public Host is still sent"`
	CookiePrefix        string `envconfig:"AUTHGEAR_COOKIE_PREFIX" desc:"the project's cookie_prefix, before session, app_session, app_access_token"`
	ListenAddr          string `envconfig:"LISTEN_ADDR" default:":8080" desc:"address to serve on"`

	RedisURL       string        `envconfig:"REDIS_URL" desc:"redis:// or rediss:// URL of the shared cache; empty: in-process cache only"`
	RedisMode      string        `envconfig:"REDIS_MODE" default:"single" desc:"single, sentinel (REDIS_URL names a sentinel and ?master_name=) or cluster (extra nodes as ?addr=)"`
	RedisKeyPrefix string        `envconfig:"REDIS_KEY_PREFIX" default:"forwardauth:" desc:"prefix of every Redis key"`
	RedisTimeout   time.Duration `envconfig:"REDIS_TIMEOUT" default:"50ms" desc:"timeout of one Redis operation; on failure requests go on to Authgear"`
	CacheKeySecret string        `envconfig:"CACHE_KEY_SECRET" desc:"secret of the keyed hash of credentials (32+ characters); required with REDIS_URL, random per process otherwise"`

	CacheTTL         time.Duration `envconfig:"CACHE_TTL" default:"60s" desc:"how long an allow is cached"`
	CacheNegativeTTL time.Duration `envconfig:"CACHE_NEGATIVE_TTL" default:"5s" desc:"how long a deny is cached"`
	LocalCacheTTL    time.Duration `envconfig:"LOCAL_CACHE_TTL" default:"5s" desc:"with REDIS_URL, how long a replica keeps a decision in memory (bounds the lag of a missed purge); 0: not at all"`
	LocalCacheSize   int           `envconfig:"LOCAL_CACHE_SIZE" default:"100000" desc:"most decisions kept in memory"`
	ResolverTimeout  time.Duration `envconfig:"RESOLVER_TIMEOUT" default:"2s" desc:"timeout of a call to Authgear's resolver"`

	ResolverMaxConcurrent int           `envconfig:"RESOLVER_MAX_CONCURRENT" default:"256" desc:"most calls to Authgear at once; more wait (within RESOLVER_TIMEOUT) for a slot"`
	ResolverBreakAfter    int           `envconfig:"RESOLVER_BREAK_AFTER" default:"20" desc:"consecutive failed calls after which Authgear is given a rest (0: never)"`
	ResolverCooldown      time.Duration `envconfig:"RESOLVER_BREAK_COOLDOWN" default:"5s" desc:"how long that rest lasts before one call probes Authgear again"`
	ResolverClientRate    int           `envconfig:"RESOLVER_CLIENT_RATE" default:"20" desc:"resolver calls per second each client may cause on average (new credentials; cached ones cost nothing); over it: 429. 0: no limit"`
	ResolverClientBurst   int           `envconfig:"RESOLVER_CLIENT_BURST" default:"100" desc:"resolver calls a client may cause at once before RESOLVER_CLIENT_RATE applies"`
	CredentialShapes      string        `envconfig:"CREDENTIAL_SHAPES" default:"authgear" desc:"authgear: refuse credentials of a shape Authgear never issues without asking it; any: send every credential to Authgear"`
	StaleIfError          time.Duration `envconfig:"STALE_IF_ERROR" default:"0s" desc:"serve a cached allow up to this long past CACHE_TTL while Authgear fails (0: off)"`

	JWTVerify         string        `envconfig:"JWT_VERIFY" default:"off" desc:"off; true (verify JWT access tokens here, no resolver call); hybrid (verify here, then confirm with the resolver through the cache)"`
	JWTExtraAudiences string        `envconfig:"JWT_EXTRA_AUDIENCES" desc:"comma-separated audiences accepted besides AUTHGEAR_ENDPOINT (resource URIs)"`
	JWTMaxLifetime    time.Duration `envconfig:"JWT_MAX_LIFETIME" default:"24h" desc:"at least the project's access token lifetime: how long a revoked user's tokens stay deny-listed"`

	AssertionKeysFile string        `envconfig:"ASSERTION_KEYS_FILE" desc:"JWK Set file of private keys, the first signing (forwardauth genkey makes one): every allow then carries X-Authgear-Jwt-Assertion, and /.well-known/jwks.json serves the public keys"`
	AssertionIssuer   string        `envconfig:"ASSERTION_ISSUER" default:"authgear-forwardauth" desc:"iss of the assertions"`
	AssertionTTL      time.Duration `envconfig:"ASSERTION_TTL" default:"5m" desc:"lifetime of an assertion (10s to 1h), never past the JWT access token's own exp"`

	WebhookSecret string `envconfig:"AUTHGEAR_WEBHOOK_SECRET" desc:"enables POST /webhooks/authgear: the project's webhook secret (signature key)"`
	AdminToken    string `envconfig:"ADMIN_TOKEN" desc:"enables POST /purge with Authorization: Bearer ADMIN_TOKEN"`

	TrustedProxies   string `envconfig:"TRUSTED_PROXIES" default:"127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7" desc:"CIDRs of gateways whose X-Original-*/X-Forwarded-* describe the original request; none to trust nobody"`
	AllowPreflight   bool   `envconfig:"ALLOW_PREFLIGHT" default:"false" desc:"let exact CORS preflights through without credentials: OPTIONS with Origin and Access-Control-Request-Method, no body, Content-Type or method override"`
	LoginURL         string `envconfig:"LOGIN_URL" desc:"sign-in page for browsers without a session (302, or 401 with Location for nginx)"`
	LoginReturnHosts string `envconfig:"LOGIN_RETURN_HOSTS" desc:"comma-separated hosts (*.example.com for subdomains; host:port for a port other than the scheme's default) the return URL may point at; required with LOGIN_URL"`
	LoginReturnParam string `envconfig:"LOGIN_RETURN_PARAM" default:"return_to" desc:"parameter of LOGIN_URL that carries the original URL"`

	// The built-in browser sign-in (config_signin.go).
	AuthgearClientID   string        `envconfig:"AUTHGEAR_CLIENT_ID" desc:"turns on the built-in browser sign-in through Authgear's authorize endpoint: a first-party client of the project"`
	SigninStateSecret  string        `envconfig:"SIGNIN_STATE_SECRET" desc:"with AUTHGEAR_CLIENT_ID: key of the signed sign-in state (32+ characters, the same on every replica)"`
	SignoutRedirectURL string        `envconfig:"SIGNOUT_REDIRECT_URL" desc:"with AUTHGEAR_CLIENT_ID: where Authgear sends the browser after sign-out (a registered post-logout redirect URI)"`
	SigninCallbackURL  string        `envconfig:"SIGNIN_CALLBACK_URL" desc:"one callback for every app host, https://<host>/_forwardauth/callback (default: each app host's own)"`
	SigninStateTTL     time.Duration `envconfig:"SIGNIN_STATE_TTL" default:"15m" desc:"how long a sign-in may take, from the redirect to Authgear to the callback (1m to 1h)"`

	ShutdownTimeout time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"15s" desc:"how long SIGTERM waits for requests in flight"`
	LogLevel        string        `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`

	// Derived by validate.
	endpoint    *url.URL
	resolverURL *url.URL
	keySecret   []byte
	logLevel    slog.Level
	proxies     []netip.Prefix
	jwtMode     handler.JWTMode
	shapes      handler.CredentialShapes
	loginURL    *url.URL
	returnHosts []string
	signin      *handler.SigninConfig
}

// loadConfig reads every variable through getenv, as envconfig's tags
// describe them, and checks them. An error names the variable and the problem.
func loadConfig(getenv func(string) string) (config, error) {
	var c config
	v := reflect.ValueOf(&c).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		name := f.Tag.Get("envconfig")
		if name == "" {
			continue
		}
		raw := getenv(name)
		if raw == "" {
			if f.Tag.Get("required") == "true" {
				return c, fmt.Errorf("%s is required: %s", name, f.Tag.Get("desc"))
			}
			raw = f.Tag.Get("default")
		}
		if err := setField(v.Field(i), raw); err != nil {
			return c, fmt.Errorf("%s=%q: %v", name, raw, err)
		}
	}
	return c, c.validate()
}

func setField(f reflect.Value, raw string) error {
	switch f.Interface().(type) {
	case string:
		f.SetString(raw)
	case time.Duration:
		if raw == "" {
			return nil
		}
		d, err := time.ParseDuration(raw)
		if err != nil {
			return errors.New("not a duration (e.g. 60s, 5m)")
		}
		f.SetInt(int64(d))
	case int:
		if raw == "" {
			return nil
		}
		n, err := strconv.Atoi(raw)
		if err != nil {
			return errors.New("not a whole number")
		}
		f.SetInt(int64(n))
	case bool:
		if raw == "" {
			return nil
		}
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return errors.New("not true or false")
		}
		f.SetBool(b)
	default:
		return fmt.Errorf("unsupported type %s", f.Type())
	}
	return nil
}

func (c *config) validate() error {
	var err error
	if c.endpoint, err = parseOrigin(c.AuthgearEndpoint); err != nil {
		return fmt.Errorf("AUTHGEAR_ENDPOINT=%q: %v", c.AuthgearEndpoint, err)
	}
	if c.AuthgearResolverURL != "" {
		u, err := url.Parse(c.AuthgearResolverURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("AUTHGEAR_RESOLVER_URL=%q: must be an absolute http(s) URL", c.AuthgearResolverURL)
		}
		c.resolverURL = u
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"CACHE_TTL", c.CacheTTL}, {"CACHE_NEGATIVE_TTL", c.CacheNegativeTTL},
		{"RESOLVER_TIMEOUT", c.ResolverTimeout}, {"REDIS_TIMEOUT", c.RedisTimeout}, {"SHUTDOWN_TIMEOUT", c.ShutdownTimeout},
		{"RESOLVER_BREAK_COOLDOWN", c.ResolverCooldown},
	} {
		if d.v <= 0 {
			return fmt.Errorf("%s=%s: must be positive", d.name, d.v)
		}
	}
	switch c.JWTVerify {
	case "off", "false", "":
		c.jwtMode = handler.JWTOff
	case "true", "on":
		c.jwtMode = handler.JWTLocal
	case "hybrid":
		c.jwtMode = handler.JWTHybrid
	default:
		return fmt.Errorf("JWT_VERIFY=%q: must be off, true or hybrid", c.JWTVerify)
	}
	if c.JWTMaxLifetime < 5*time.Minute {
		return fmt.Errorf("JWT_MAX_LIFETIME=%s: must be at least the access token lifetime (Authgear's minimum is 5m)", c.JWTMaxLifetime)
	}
	if c.AssertionTTL < assertion.MinTTL || c.AssertionTTL > assertion.MaxTTL {
		return fmt.Errorf("ASSERTION_TTL=%s: must be between %s and %s", c.AssertionTTL, assertion.MinTTL, assertion.MaxTTL)
	}
	if c.AssertionIssuer == "" {
		return errors.New("ASSERTION_ISSUER: must not be empty")
	}
	if c.LocalCacheTTL < 0 || (c.LocalCacheTTL == 0 && c.RedisURL == "") {
		return fmt.Errorf("LOCAL_CACHE_TTL=%s: must be positive (0, the in-process tier off, only with REDIS_URL)", c.LocalCacheTTL)
	}
	if c.StaleIfError < 0 {
		return fmt.Errorf("STALE_IF_ERROR=%s: must not be negative", c.StaleIfError)
	}
	if c.ResolverMaxConcurrent <= 0 {
		return fmt.Errorf("RESOLVER_MAX_CONCURRENT=%d: must be positive", c.ResolverMaxConcurrent)
	}
	if c.ResolverClientRate < 0 {
		return fmt.Errorf("RESOLVER_CLIENT_RATE=%d: must not be negative (0: no limit)", c.ResolverClientRate)
	}
	if c.ResolverClientRate > 0 && c.ResolverClientBurst < 1 {
		return fmt.Errorf("RESOLVER_CLIENT_BURST=%d: must be at least 1", c.ResolverClientBurst)
	}
	switch c.CredentialShapes {
	case "authgear":
		c.shapes = handler.ShapesAuthgear
	case "any":
		c.shapes = handler.ShapesAny
	default:
		return fmt.Errorf("CREDENTIAL_SHAPES=%q: must be authgear or any", c.CredentialShapes)
	}
	if c.ResolverBreakAfter < 0 {
		return fmt.Errorf("RESOLVER_BREAK_AFTER=%d: must not be negative", c.ResolverBreakAfter)
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		return errors.New("ADMIN_TOKEN: must be at least 16 characters")
	}
	if c.LocalCacheSize <= 0 {
		return fmt.Errorf("LOCAL_CACHE_SIZE=%d: must be positive", c.LocalCacheSize)
	}
	if strings.ContainsAny(c.RedisKeyPrefix, "{}") {
		// Braces would make a Redis Cluster hash tag of the prefix, sending a
		// user's index and tombstone to different slots.
		return fmt.Errorf("REDIS_KEY_PREFIX=%q: must not contain { or }", c.RedisKeyPrefix)
	}
	switch c.RedisMode {
	case "single", "sentinel", "cluster":
	default:
		return fmt.Errorf("REDIS_MODE=%q: must be single, sentinel or cluster", c.RedisMode)
	}
	switch {
	case c.CacheKeySecret != "" && len(c.CacheKeySecret) < 32:
		return errors.New("CACHE_KEY_SECRET: must be at least 32 characters (e.g. openssl rand -hex 32)")
	case c.CacheKeySecret != "":
		c.keySecret = []byte(c.CacheKeySecret)
	case c.RedisURL != "":
		return errors.New("CACHE_KEY_SECRET is required with REDIS_URL: replicas sharing Redis must compute the same keys (e.g. openssl rand -hex 32)")
	default:
		c.keySecret = make([]byte, 32)
		_, _ = rand.Read(c.keySecret)
	}
	if c.TrustedProxies != "none" {
		for _, s := range splitList(c.TrustedProxies) {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return fmt.Errorf("TRUSTED_PROXIES: %q is not a CIDR like 10.0.0.0/8", s)
			}
			c.proxies = append(c.proxies, p.Masked())
		}
	}
	if c.LoginURL != "" {
		u, err := url.Parse(c.LoginURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("LOGIN_URL=%q: must be an absolute http(s) URL (gateways rewrite relative ones)", c.LoginURL)
		}
		c.loginURL = u
		if c.returnHosts = splitList(c.LoginReturnHosts); len(c.returnHosts) == 0 {
			return errors.New("LOGIN_RETURN_HOSTS is required with LOGIN_URL: the hosts a sign-in may return to, so that no link can redirect elsewhere")
		}
		if c.LoginReturnParam == "" {
			return errors.New("LOGIN_RETURN_PARAM: must not be empty")
		}
	}
	if err := c.validateSignin(); err != nil {
		return err
	}
	if err := c.logLevel.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return fmt.Errorf("LOG_LEVEL=%q: must be debug, info, warn or error", c.LogLevel)
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// parseOrigin accepts scheme://host[:port] and nothing more: Authgear picks
// the project by host and builds its URLs from this origin.
func parseOrigin(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSuffix(s, "/"))
	switch {
	case err != nil:
		return nil, err
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, errors.New("must start with https:// (or http://)")
	case u.Host == "":
		return nil, errors.New("has no host")
	case u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return nil, errors.New("must be an origin only, like https://myproject.authgear.cloud")
	}
	return u, nil
}

// printUsage lists every variable with its default.
func printUsage(w io.Writer) error {
	var vars bytes.Buffer
	// One variable a line, fields separated by NULs, then laid out as the Go
	// tools lay out their flags: the name, then its description indented
	// below it and wrapped, so that nothing depends on the longest default.
	const format = "{{range .}}{{usage_key .}}\x00{{usage_default .}}\x00{{usage_required .}}\x00{{usage_description .}}\n{{end}}"
	if err := envconfig.Usagef("", &config{}, &vars, format); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("authgear-forwardauth answers gateways' auth sub-requests from Authgear sessions.\n")
	b.WriteString("Usage: authgear-forwardauth [healthcheck | genkey [current-keys.json] | -h]\n\nConfigured by environment variables:\n")
	for line := range strings.Lines(vars.String()) {
		f := strings.Split(strings.TrimSuffix(line, "\n"), "\x00")
		if len(f) != 4 {
			continue
		}
		b.WriteString("  " + f[0])
		if f[2] == "true" {
			b.WriteString(" (required)")
		}
		b.WriteString("\n")
		desc := f[3]
		if f[1] != "" {
			desc += " (default " + f[1] + ")"
		}
		writeWrapped(&b, desc, "    \t", 72)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeWrapped writes text in lines of at most width characters (a longer
// word stands alone), each after indent.
func writeWrapped(b *strings.Builder, text, indent string, width int) {
	n := 0
	for i, word := range strings.Fields(text) {
		if i > 0 && n+1+len(word) > width {
			b.WriteString("\n")
			n = 0
		}
		if n == 0 {
			b.WriteString(indent)
		} else {
			b.WriteString(" ")
			n++
		}
		b.WriteString(word)
		n += len(word)
	}
	b.WriteString("\n")
}
