package handler

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgear/authgear-forwardauth/resolver"
)

// Decider answers who is behind a request's credentials. An error means the
// answer is unknown.
type Decider interface {
	Decide(ctx context.Context, req resolver.Request) (*resolver.Decision, error)
}

// Values shared by every response; headers are assigned, never appended to.
var (
	challenge             = []string{`Bearer`}
	challengeInvalidToken = []string{`Bearer error="invalid_token"`}
)

type decisionCounters struct {
	allow, deny, noCredential, malformed, unavailable prometheus.Counter
}

func newDecisionCounters(reg prometheus.Registerer) decisionCounters {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "forwardauth_decisions_total",
		Help: "Answers of /auth by outcome.",
	}, []string{"outcome"})
	reg.MustRegister(v)
	return decisionCounters{
		allow:        v.WithLabelValues("allow"),
		deny:         v.WithLabelValues("deny"),
		noCredential: v.WithLabelValues("no_credential"),
		malformed:    v.WithLabelValues("malformed"),
		unavailable:  v.WithLabelValues("unavailable"),
	}
}

// handleAuth answers a gateway's sub-request: 200 with the identity headers,
// 401, or 503 when Authgear's answer is unknown.
func handleAuth(decider Decider, cookiePrefix string, logger *slog.Logger, reg prometheus.Registerer) http.Handler {
	names := newCookieNames(cookiePrefix)
	count := newDecisionCounters(reg)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		creds, bearer, err := readCredentials(r.Header, names)
		if err != nil {
			count.malformed.Inc()
			unauthorized(w, true)
			return
		}
		if creds.Empty() {
			count.noCredential.Inc()
			unauthorized(w, false)
			return
		}
		req := resolver.Request{Credentials: creds}
		if xff := r.Header["X-Forwarded-For"]; len(xff) > 0 {
			req.ForwardedFor = xff[0]
		}
		if ua := r.Header["User-Agent"]; len(ua) > 0 {
			req.UserAgent = ua[0]
		}
		d, err := decider.Decide(r.Context(), req)
		switch {
		case err != nil:
			count.unavailable.Inc()
			if !errors.Is(err, context.Canceled) {
				logger.LogAttrs(r.Context(), slog.LevelDebug, "answering 503", slog.String("error", err.Error()))
			}
			http.Error(w, "authentication service unavailable", http.StatusServiceUnavailable)
		case !d.Allow:
			count.deny.Inc()
			unauthorized(w, bearer)
		default:
			count.allow.Inc()
			d.SetHeader(w.Header())
			w.WriteHeader(http.StatusOK)
		}
	})
}

func unauthorized(w http.ResponseWriter, bearer bool) {
	if bearer {
		w.Header()["Www-Authenticate"] = challengeInvalidToken
	} else {
		w.Header()["Www-Authenticate"] = challenge
	}
	w.WriteHeader(http.StatusUnauthorized)
}
