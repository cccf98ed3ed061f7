package handler

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgear/authgear-forwardauth/resolver"
	"github.com/authgear/authgear-forwardauth/signin"
)

// SigninConfig is the built-in browser sign-in (AUTHGEAR_CLIENT_ID): a
// browser without a session goes to Authgear's authorize endpoint and comes
// back through /_forwardauth/callback to its deep link; /_forwardauth/sign_out
// forgets its decisions and ends its Authgear session.
type SigninConfig struct {
	// Endpoint is Authgear's public origin, which the browser visits.
	Endpoint *url.URL
	// ClientID is a first-party client of the project.
	ClientID string
	// State signs the deep link carried through Authgear.
	State *signin.Signer
	// CallbackURL, when set, is the one redirect URI for every app host;
	// otherwise each app host's own /_forwardauth/callback.
	CallbackURL *url.URL
	// SignOutRedirect is where Authgear sends the browser after sign-out
	// (a registered post-logout redirect URI).
	SignOutRedirect *url.URL
}

// authorize is the sign-in URL returning to u (already checked against the
// return hosts), or "" when it cannot be made.
func (s *SigninConfig) authorize(u *url.URL) string {
	u = signin.Clean(u)
	state, err := s.State.Sign(u)
	if err != nil {
		return ""
	}
	callback := signin.CallbackURL(u)
	if s.CallbackURL != nil {
		callback = s.CallbackURL.String()
	}
	return signin.AuthorizeURL(s.Endpoint, s.ClientID, callback, state)
}

// Outcomes of forwardauth_signin_total{step,outcome}.
type signinCounters struct {
	returned, badState, expired, hostRefused, authgearError, noCookie prometheus.Counter
	started, startRefused                                             prometheus.Counter
	signedOut, purgeFailed                                            prometheus.Counter
}

func newSigninCounters(reg prometheus.Registerer) signinCounters {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "forwardauth_signin_total",
		Help: "Browser sign-in and sign-out answers by step (callback, sign_in, sign_out) and outcome.",
	}, []string{"step", "outcome"})
	reg.MustRegister(v)
	return signinCounters{
		returned:      v.WithLabelValues("callback", "returned"),
		badState:      v.WithLabelValues("callback", "bad_state"),
		expired:       v.WithLabelValues("callback", "expired"),
		hostRefused:   v.WithLabelValues("callback", "host_refused"),
		authgearError: v.WithLabelValues("callback", "authgear_error"),
		noCookie:      v.WithLabelValues("callback", "no_cookie"),
		started:       v.WithLabelValues("sign_in", "started"),
		startRefused:  v.WithLabelValues("sign_in", "refused"),
		signedOut:     v.WithLabelValues("sign_out", "signed_out"),
		purgeFailed:   v.WithLabelValues("sign_out", "purge_failed"),
	}
}

// mountSignin adds the browser sign-in routes under /_forwardauth/, which
// every gateway proxies to the service without the auth check.
func mountSignin(mux interface {
	Get(string, http.HandlerFunc)
	Post(string, http.HandlerFunc)
}, login LoginConfig, cookiePrefix string, shapes CredentialShapes, purger Purger, purges *prometheus.CounterVec, logger *slog.Logger, reg prometheus.Registerer) {
	count := newSigninCounters(reg)
	names := newCookieNames(cookiePrefix)
	mux.Get(signin.CallbackPath, handleCallback(login, names, count, logger).ServeHTTP)
	mux.Get(signin.SignInPath, handleSignIn(login, count).ServeHTTP)
	out := handleSignOut(login, names, shapes.checker(), purger, purges.WithLabelValues(causeSignOut), count, logger)
	mux.Get(signin.SignOutPath, out.ServeHTTP)
	mux.Post(signin.SignOutPath, out.ServeHTTP)
}

// handleCallback serves GET /_forwardauth/callback, where Authgear sends the
// browser back with the state (and x_traceparent, ignored), or with error.
// A good state is signed by us, unexpired, and returns to a host of
// LOGIN_RETURN_HOSTS: the browser goes to its deep link. Anything else gets a
// small page that repeats nothing of the request; its one link is the deep
// link of an authentic state, or /.
func handleCallback(login LoginConfig, names cookieNames, count signinCounters, logger *slog.Logger) http.Handler {
	s := login.Signin
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var st signin.State
		var err error
		if states := q["state"]; len(states) == 1 {
			st, err = s.State.Verify(states[0])
		} else {
			err = signin.ErrMalformed // none, or two: which one?
		}
		retry := "/"
		hostOK := st.ReturnURL != nil && login.ReturnAllowed(st.ReturnURL)
		if hostOK {
			retry = st.ReturnURL.String()
		}
		switch {
		case errors.Is(err, signin.ErrExpired):
			count.expired.Inc()
			writePage(w, http.StatusBadRequest, pageExpired, retry)
		case err != nil:
			count.badState.Inc()
			logger.LogAttrs(r.Context(), slog.LevelDebug, "sign-in callback refused", slog.String("reason", err.Error()))
			writePage(w, http.StatusBadRequest, pageBadState, retry)
		case !hostOK:
			// Signed by us, yet LOGIN_RETURN_HOSTS no longer names its host
			// (changed since, or differs between replicas).
			count.hostRefused.Inc()
			logger.LogAttrs(r.Context(), slog.LevelWarn, "sign-in callback: return host not in LOGIN_RETURN_HOSTS")
			writePage(w, http.StatusBadRequest, pageBadState, retry)
		case q.Has("error"):
			// Authgear's OAuth error (the user cancelled, the client is
			// misconfigured...): error_description is Authgear's text, but
			// anyone can put anything in a link, so it is not shown.
			count.authgearError.Inc()
			logger.LogAttrs(r.Context(), slog.LevelInfo, "sign-in ended with an Authgear error")
			writePage(w, http.StatusForbidden, pageAuthgearError, retry)
		case !hasCredential(r.Header, names):
			// Authgear signed the browser in, but its session cookie does not
			// reach this host: sending it on would loop between Authgear and
			// the app until the browser gives up.
			count.noCookie.Inc()
			logger.LogAttrs(r.Context(), slog.LevelWarn, "sign-in callback without an Authgear cookie: is Authgear's cookie domain a parent of this host?",
				slog.String("host", r.Host))
			writePage(w, http.StatusInternalServerError, pageNoCookie, retry)
		default:
			count.returned.Inc()
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Location", st.ReturnURL.String())
			w.WriteHeader(http.StatusFound)
		}
	})
}

// handleSignIn serves GET /_forwardauth/sign_in?rd=<url>: a "Sign in" link
// for pages that serve everyone, and ingress-nginx's auth-signin (which
// ignores the service's Location and sends every 401 here with rd).
func handleSignIn(login LoginConfig, count signinCounters) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var loc string
		if rd := returnParam(r.URL.Query()["rd"], login); rd != nil {
			loc = login.Signin.authorize(rd)
		}
		if loc == "" {
			count.startRefused.Inc()
			writePage(w, http.StatusBadRequest, pageBadReturn, "/")
			return
		}
		count.started.Inc()
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Location", loc)
		w.WriteHeader(http.StatusFound)
	})
}

// handleSignOut serves /_forwardauth/sign_out[?rd=<url>] (GET, or POST from a
// form): it forgets the cached decisions of the request's credentials, on
// every tier and replica, then sends the browser to Authgear's end_session,
// which ends the session; Authgear sends no webhook for a sign-out, so
// without this the cache would keep allowing the old cookie. rd, when within
// LOGIN_RETURN_HOSTS, replaces SIGNOUT_REDIRECT_URL (it must be registered as
// a post-logout redirect URI too).
func handleSignOut(login LoginConfig, names cookieNames, shapes *resolver.Shapes, purger Purger, purged prometheus.Counter, count signinCounters, logger *slog.Logger) http.Handler {
	s := login.Signin
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := s.SignOutRedirect.String()
		if rd := returnParam(r.URL.Query()["rd"], login); rd != nil {
			target = rd.String()
		}
		// A malformed credential was never cached: nothing to forget. Read
		// as /auth reads them (shapes), so the keys are the cached ones.
		if creds, _, _, err := readCredentials(r.Header, names, shapes); err == nil && !creds.Empty() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), purgeTimeout)
			defer cancel()
			var errs []error
			for _, c := range purgeSets(creds) {
				errs = append(errs, purger.PurgeCredentials(ctx, c))
			}
			if err := errors.Join(errs...); err != nil {
				// Going on would leave an allow cached for a cookie the user
				// believes is dead: fail closed, let them retry.
				count.purgeFailed.Inc()
				logger.LogAttrs(r.Context(), slog.LevelError, "sign-out: purge failed", slog.String("error", err.Error()))
				writePage(w, http.StatusServiceUnavailable, pagePurgeFailed, signin.SignOutPath)
				return
			}
			purged.Inc()
		}
		count.signedOut.Inc()
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Location", signin.EndSessionURL(s.Endpoint, target))
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusSeeOther)
		} else {
			w.WriteHeader(http.StatusFound)
		}
	})
}

// purgeSets are the credential sets whose decisions a sign-out forgets: the
// request's own, and each credential alone, which is what another app host
// that receives only the shared session cookie has cached.
func purgeSets(c resolver.Credentials) []resolver.Credentials {
	sets := []resolver.Credentials{c}
	var singles []resolver.Credentials
	for _, s := range []resolver.Credentials{
		{Bearer: c.Bearer}, {AppSession: c.AppSession}, {AppAccessToken: c.AppAccessToken}, {Session: c.Session},
	} {
		if !s.Empty() {
			singles = append(singles, s)
		}
	}
	if len(singles) > 1 {
		sets = append(sets, singles...)
	}
	return sets
}

// returnParam is the one rd value as an absolute URL the login config may
// return to, or nil.
func returnParam(values []string, login LoginConfig) *url.URL {
	if len(values) != 1 {
		return nil
	}
	u, err := url.Parse(values[0])
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Opaque != "" || u.User != nil || !login.ReturnAllowed(u) {
		return nil
	}
	return signin.Clean(u) // no default port: the URL as registered
}

// hasCredential reports whether the request carries any Authgear credential.
func hasCredential(h http.Header, names cookieNames) bool {
	c, _, _, err := readCredentials(h, names, nil)
	return err == nil && !c.Empty()
}

// page is one of the fixed pages: nothing in it comes from the request
// except Link, which is a URL this service signed or a fixed path.
type page struct {
	Title, Text, LinkText string
}

var (
	pageBadState      = page{"Sign-in link not valid", "This sign-in link is not valid here.", "Try again"}
	pageExpired       = page{"Sign-in took too long", "This sign-in link has expired.", "Try again"}
	pageAuthgearError = page{"Sign-in not completed", "You were not signed in.", "Try again"}
	pageNoCookie      = page{"Sign-in did not reach this site", "You are signed in, but the session cookie is not sent to this site. Ask the administrator to check the cookie domain of the sign-in service.", "Try again"}
	pageBadReturn     = page{"Sign-in link not valid", "This sign-in link does not say where to return, or returns to a site that is not allowed.", "Go to the home page"}
	pagePurgeFailed   = page{"Sign-out not completed", "Signing out failed for a moment. You are still signed in.", "Sign out again"}
)

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>{{.Title}}</title></head>
<body><h1>{{.Title}}</h1><p>{{.Text}}</p><p><a id="retry" href="{{.Link}}">{{.LinkText}}</a></p></body></html>
`))

func writePage(w http.ResponseWriter, status int, p page, link string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, struct {
		page
		Link string
	}{p, link})
}
