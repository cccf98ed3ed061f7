// Command authgear-forwardauth answers the auth sub-requests of nginx,
// Traefik and Caddy from Authgear sessions, through a two-tier cache.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/authgear/authgear-forwardauth/assertion"
	"github.com/authgear/authgear-forwardauth/cache"
	"github.com/authgear/authgear-forwardauth/handler"
	"github.com/authgear/authgear-forwardauth/perclient"
	"github.com/authgear/authgear-forwardauth/resolver"
	"github.com/authgear/authgear-forwardauth/tracing"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run starts the service and serves until ctx is done, then drains.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 1 {
		switch args[1] {
		case "-h", "-help", "--help", "help":
			if err := printUsage(stdout); err != nil {
				return err
			}
			_, err := io.WriteString(stdout, tracing.Usage)
			return err
		case "healthcheck":
			return healthcheck(ctx, getenv("LISTEN_ADDR"))
		case "genkey":
			return genkey(args[2:], stdout)
		default:
			return fmt.Errorf("unknown argument %q (try -h)", args[1])
		}
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: cfg.logLevel}))
	var assertionKeys *assertion.Keys
	if cfg.AssertionKeysFile != "" {
		if assertionKeys, err = assertion.LoadKeys(cfg.AssertionKeysFile); err != nil {
			return fmt.Errorf("ASSERTION_KEYS_FILE=%q: %v", cfg.AssertionKeysFile, err)
		}
	}

	// Tracing is off (a nil tracer, no work at all) unless an OTLP endpoint
	// is set; on shutdown the spans still buffered are exported.
	tr, err := tracing.Setup(ctx, getenv, logger)
	if err != nil {
		return err
	}
	defer func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tr.Shutdown(fctx); err != nil {
			logger.Warn("tracing: flushing spans on shutdown failed", "error", err.Error())
		}
	}()
	tracer := tr.Tracer()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	client := resolver.NewClient(resolver.ClientConfig{
		Endpoint:     cfg.endpoint,
		ResolverURL:  cfg.resolverURL,
		CookiePrefix: cfg.CookiePrefix,
		Timeout:      cfg.ResolverTimeout,

		PropagateTrace: tracer != nil, // Authgear's spans join the request's trace
	}, resolver.NewHTTPClient(cfg.ResolverTimeout), logger, reg)
	guard := resolver.NewGuard(client, resolver.GuardConfig{
		MaxConcurrent: cfg.ResolverMaxConcurrent,
		BreakAfter:    cfg.ResolverBreakAfter,
		Cooldown:      cfg.ResolverCooldown,
	}, reg)
	// In front of the Guard: only calls that would reach Authgear are charged
	// to their client, and a refusal never counts as Authgear failing.
	guarded := perclient.New(guard, perclient.Config{
		Rate:           float64(cfg.ResolverClientRate),
		Burst:          cfg.ResolverClientBurst,
		TrustedProxies: cfg.proxies,
	}, logger, guard.Rejected("client_rate"))

	localTTL := cfg.CacheTTL + cfg.StaleIfError // without Redis, the in-process tier is the cache
	var shared cache.Tier
	var redisTier *cache.Redis
	if cfg.RedisURL != "" {
		rc, err := newRedisClient(cfg)
		if err != nil {
			return err
		}
		defer rc.Close()
		redisTier = cache.NewRedis(rc, cache.RedisConfig{
			Prefix:       cfg.RedisKeyPrefix,
			Timeout:      cfg.RedisTimeout,
			RetryAfter:   time.Second,
			TombstoneTTL: 2*cfg.ResolverTimeout + time.Second,
			MaxTTL:       cfg.CacheTTL + cfg.StaleIfError,
		}, logger)
		defer redisTier.Close()
		shared = redisTier
		localTTL = cfg.LocalCacheTTL
	}
	keyer := cache.NewKeyer(cfg.keySecret)
	c := cache.New(cache.Config{
		TTL:         cfg.CacheTTL,
		NegativeTTL: cfg.CacheNegativeTTL,
		// A miss (queueing for a slot and the call) answers within about
		// RESOLVER_TIMEOUT, however slow Authgear is.
		FetchTimeout: cfg.ResolverTimeout + 100*time.Millisecond,
		StaleIfError: cfg.StaleIfError,
		Tracer:       tracer,
	}, keyer, cache.NewLocal(cfg.LocalCacheSize, localTTL, nil), shared, guarded, logger,
		prometheus.WrapRegistererWith(prometheus.Labels{"cache": "resolver"}, reg))

	// Work in the background (purge subscription, JWKS refresh) goes on while
	// requests drain after SIGTERM, and stops when run returns.
	background, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackground()

	// Local JWT verification: a second, in-process cache holds verified
	// tokens; the deny list blocks those revoked since they were issued.
	var jwtCfg handler.JWTConfig
	revoker := cache.Revoker{Main: c}
	caches := []cache.Purgeable{c}
	if cfg.jwtMode != handler.JWTOff {
		discovery := cfg.endpoint.JoinPath("/.well-known/openid-configuration")
		if cfg.resolverURL != nil {
			// Authgear reached at an internal address: ask it there too.
			discovery = &url.URL{Scheme: cfg.resolverURL.Scheme, Host: cfg.resolverURL.Host, Path: "/.well-known/openid-configuration"}
		}
		verifier, err := resolver.NewJWTVerifier(background, resolver.JWTConfig{
			Endpoint:       cfg.endpoint,
			DiscoveryURL:   discovery,
			ExtraAudiences: splitList(cfg.JWTExtraAudiences),
		}, resolver.NewHTTPClient(cfg.ResolverTimeout), logger)
		if err != nil {
			return fmt.Errorf("JWT_VERIFY: %w", err)
		}
		// Keyed by the tokens themselves (a hit costs no keyed hash), so
		// bounded in bytes: LOCAL_CACHE_SIZE KiB.
		jwtCache := cache.NewVerified(uint64(cfg.LocalCacheSize)<<10,
			cache.Config{TTL: cfg.CacheTTL, NegativeTTL: cfg.CacheNegativeTTL, FetchTimeout: cfg.ResolverTimeout},
			resolver.JWTResolver{V: verifier}, prometheus.WrapRegistererWith(prometheus.Labels{"cache": "jwt"}, reg))
		deny := cache.NewDenyList(cfg.JWTMaxLifetime, redisTier, nil, logger)
		jwtCfg = handler.JWTConfig{Mode: cfg.jwtMode, Verified: jwtCache, Deny: deny}
		revoker = cache.Revoker{Main: c, JWT: jwtCache, Deny: deny}
		caches = append(caches, jwtCache)
	}

	// Signed identity for the upstream: a token per decision and audience.
	var asserter handler.Asserter
	var jwks http.Handler
	var purger handler.Purger = revoker
	if assertionKeys != nil {
		issuer, err := assertion.New(background, assertion.Config{
			Keys: assertionKeys, Issuer: cfg.AssertionIssuer, TTL: cfg.AssertionTTL, MaxDecisions: cfg.LocalCacheSize,
		}, reg)
		if err != nil {
			return err
		}
		asserter, jwks = issuer, issuer.JWKS()
		purger = assertion.DroppingPurger{Next: revoker, Tokens: issuer}
		logger.Info("signing identity assertions", "kid", assertionKeys.KeyID(), "alg", assertionKeys.Algorithm(),
			"iss", cfg.AssertionIssuer, "ttl", cfg.AssertionTTL.String())
	}

	deps := handler.Deps{Decider: c, Purger: purger, Logger: logger, Registry: reg, Tracer: tracer}
	if redisTier != nil {
		deps.Redis = redisTier
		reg.MustRegister(redisTier.SubscriptionGauge())
		cache.StartListening(background, redisTier, revoker.Deny, caches...)
	}
	srv := &http.Server{
		Addr: cfg.ListenAddr,
		Handler: handler.New(handler.Config{
			Auth: handler.AuthConfig{
				CookiePrefix:   cfg.CookiePrefix,
				TrustedProxies: cfg.proxies,
				AllowPreflight: cfg.AllowPreflight,
				Login:          handler.LoginConfig{URL: cfg.loginURL, ReturnParam: cfg.LoginReturnParam, ReturnHosts: cfg.returnHosts, Signin: cfg.signin},
				JWT:            jwtCfg,
				Assertion:      asserter,
				Shapes:         cfg.shapes,
			},
			WebhookSecret: cfg.WebhookSecret,
			AdminToken:    cfg.AdminToken,
			JWKS:          jwks,
		}, deps),
		ConnContext:       handler.ConnContext(cfg.proxies),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      cfg.ResolverTimeout + 10*time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("LISTEN_ADDR=%q: %w", cfg.ListenAddr, err)
	}
	if cfg.shapes == handler.ShapesAny {
		logger.Warn("CREDENTIAL_SHAPES=any: credentials of any shape are sent to Authgear", "credential_shapes", cfg.shapes.String())
	} else {
		logger.Info("CREDENTIAL_SHAPES=authgear: credentials of a shape Authgear never issues are refused without asking it", "credential_shapes", cfg.shapes.String())
	}
	logger.Info("serving", "addr", ln.Addr().String(), "authgear", cfg.endpoint.String(),
		"redis", cfg.RedisURL != "", "cache_ttl", cfg.CacheTTL.String())

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down; draining requests in flight", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newRedisClient builds the client for REDIS_MODE. Each is a
// redis.UniversalClient; operations are bounded by REDIS_TIMEOUT and never
// retried, since a slow Redis is skipped rather than waited for.
func newRedisClient(cfg config) (redis.UniversalClient, error) {
	bad := func(err error) error { return fmt.Errorf("REDIS_URL: %v", err) }
	dial := max(10*cfg.RedisTimeout, 500*time.Millisecond)
	switch cfg.RedisMode {
	case "sentinel":
		o, err := redis.ParseFailoverURL(cfg.RedisURL)
		if err != nil {
			return nil, bad(err)
		}
		if o.MasterName == "" {
			return nil, errors.New("REDIS_URL: sentinel mode needs ?master_name=")
		}
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.MaxRetries = dial, cfg.RedisTimeout, cfg.RedisTimeout, -1
		o.ContextTimeoutEnabled = true
		return redis.NewFailoverClient(o), nil
	case "cluster":
		o, err := redis.ParseClusterURL(cfg.RedisURL)
		if err != nil {
			return nil, bad(err)
		}
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.MaxRetries = dial, cfg.RedisTimeout, cfg.RedisTimeout, -1
		o.ContextTimeoutEnabled = true
		return redis.NewClusterClient(o), nil
	default:
		o, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return nil, bad(err)
		}
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.MaxRetries = dial, cfg.RedisTimeout, cfg.RedisTimeout, -1
		o.ContextTimeoutEnabled = true
		return redis.NewClient(o), nil
	}
}

// genkey prints a JWK Set for ASSERTION_KEYS_FILE holding a new ES256 key;
// given the current file, its keys followed by the new one (published, not
// signing yet: the first step of a rotation).
func genkey(args []string, stdout io.Writer) error {
	var existing []byte
	switch len(args) {
	case 0:
	case 1:
		b, err := os.ReadFile(args[0])
		if err != nil {
			return fmt.Errorf("genkey: %v", err)
		}
		existing = b
	default:
		return errors.New("usage: forwardauth genkey [current-keys.json] > new-keys.json")
	}
	set, err := assertion.GenerateSet(existing)
	if err != nil {
		return fmt.Errorf("genkey: %s: %v", args[0], err)
	}
	_, err = fmt.Fprintf(stdout, "%s\n", set)
	return err
}

// healthcheck is for container images without curl: it asks the running
// service's /healthz on LISTEN_ADDR.
func healthcheck(ctx context.Context, listen string) error {
	if listen == "" {
		listen = ":8080"
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("LISTEN_ADDR=%q: %v", listen, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: status %d", resp.StatusCode)
	}
	return nil
}
