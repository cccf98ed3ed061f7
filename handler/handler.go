// Package handler is the HTTP edge: /auth for gateways, health, readiness and
// metrics.
package handler

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
)

// Pinger reports whether a dependency answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Config is what the handlers need besides their dependencies.
type Config struct {
	Auth AuthConfig
	// WebhookSecret enables POST /webhooks/authgear (404 when empty).
	WebhookSecret string
	// AdminToken enables POST /purge (404 when empty).
	AdminToken string
	// JWKS, when not nil, serves GET /.well-known/jwks.json: the keys that
	// verify X-Authgear-Jwt-Assertion.
	JWKS http.Handler
}

// Deps are the handlers' collaborators.
type Deps struct {
	Decider Decider
	Purger  Purger
	Redis   Pinger // nil without Redis
	Logger  *slog.Logger
	// Registry receives the metrics and is served on /metrics.
	Registry *prometheus.Registry
	// Tracer, when not nil, traces /auth (continuing the gateway's trace).
	Tracer trace.Tracer
}

// New returns the service's routes.
func New(cfg Config, d Deps) http.Handler {
	r := chi.NewRouter()
	auth := handleAuth(cfg.Auth, d.Decider, d.Logger, d.Registry, d.Tracer != nil)
	if d.Tracer != nil {
		auth = traceAuth(auth, d.Tracer)
	}
	// Gateways differ in method and path: nginx's sub-request is always GET,
	// Traefik and Caddy keep the original method, some append the path.
	r.Handle("/auth", auth)
	r.Handle("/auth/*", auth)
	r.Get("/healthz", handleHealthz())
	r.Get("/readyz", handleReadyz(d.Redis, d.Logger))
	d.Registry.MustRegister(newReadyGauge(d.Redis))
	r.Handle("/metrics", promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{Registry: d.Registry}))
	if cfg.JWKS != nil {
		r.Method(http.MethodGet, "/.well-known/jwks.json", cfg.JWKS)
		r.Method(http.MethodHead, "/.well-known/jwks.json", cfg.JWKS)
	}
	purges := newPurgeCounter(d.Registry)
	if cfg.WebhookSecret != "" {
		r.Post("/webhooks/authgear", handleWebhook(cfg.WebhookSecret, d.Purger, purges, d.Logger, d.Registry).ServeHTTP)
	}
	if cfg.AdminToken != "" {
		r.Post("/purge", handlePurge(cfg.AdminToken, d.Purger, cfg.Auth.CookiePrefix, cfg.Auth.Shapes, purges, d.Logger).ServeHTTP)
	}
	if cfg.Auth.Login.Signin != nil {
		mountSignin(r, cfg.Auth.Login, cfg.Auth.CookiePrefix, cfg.Auth.Shapes, d.Purger, purges, d.Logger, d.Registry)
	}
	return authFirst(auth, r)
}

// authFirst sends /auth straight to its handler and the rest to the router:
// chi copies each request to carry its route context, which costs /auth, the
// one hot path, two allocations and a third of its time, for no parameter.
func authFirst(auth, rest http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p == "/auth" || strings.HasPrefix(p, "/auth/") {
			auth.ServeHTTP(w, r)
			return
		}
		rest.ServeHTTP(w, r)
	})
}

func handleHealthz() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	}
}

// handleReadyz names what is not ready but not why: the error (Redis's
// address among it) is for the log, not for whoever can reach the port.
func handleReadyz(redis Pinger, logger *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := ready(r.Context(), redis); err != nil {
			logger.LogAttrs(r.Context(), slog.LevelWarn, "not ready", slog.String("error", err.Error()))
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: redis\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	}
}

// ready is what /readyz and forwardauth_ready report: Redis, when used,
// answers and this replica listens for purges.
func ready(ctx context.Context, redis Pinger) error {
	if redis == nil {
		return nil
	}
	if err := redis.Ping(ctx); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

// readyCheckTimeout bounds the check a scrape of forwardauth_ready makes.
const readyCheckTimeout = 2 * time.Second

// newReadyGauge is forwardauth_ready: the readiness check, made at each
// scrape, so that a replica Kubernetes keeps out of its Service still shows.
func newReadyGauge(redis Pinger) prometheus.GaugeFunc {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "forwardauth_ready",
		Help: "1 when this replica is ready (what /readyz answers, checked at each scrape), 0 when it is not.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), readyCheckTimeout)
		defer cancel()
		if ready(ctx, redis) != nil {
			return 0
		}
		return 1
	})
}
