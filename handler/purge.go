package handler

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgear/authgear-forwardauth/resolver"
)

// Purger forgets cached decisions: all of a user's, or the one of a set of
// credentials (the key is computed exactly as for /auth; a JWT among them is
// also blocked until it expires).
type Purger interface {
	UserPurger
	PurgeCredentials(ctx context.Context, c resolver.Credentials) error
}

// Causes of forwardauth_purges_total.
const (
	causeWebhook       = "webhook"
	causeAPIUser       = "api_user"
	causeAPICredential = "api_credential"
	causeSignOut       = "sign_out"
)

// maxPurgeBody bounds a purge request: two headers' worth of credentials and
// a user id fit many times over.
const maxPurgeBody = 64 << 10

// purgeTimeout bounds a purge once started. It runs apart from the caller's
// context: a purge the sender stopped waiting for must still happen, since
// Authgear never sends a webhook twice and an app signing out may not retry.
const purgeTimeout = 5 * time.Second

// newPurgeCounter registers forwardauth_purges_total, shared by the webhook
// and the purge API (a collector can be registered only once).
func newPurgeCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "forwardauth_purges_total",
		Help: "Successful purges of cached decisions by cause (webhook, api_user, api_credential, sign_out).",
	}, []string{"cause"})
	reg.MustRegister(v)
	// Every series exists from the start, so a rate() over it is never empty.
	for _, c := range []string{causeWebhook, causeAPIUser, causeAPICredential, causeSignOut} {
		v.WithLabelValues(c)
	}
	return v
}

// purgeRequest is the body of POST /purge. Authorization and Cookie are the
// headers exactly as the app received them; together they name one decision.
type purgeRequest struct {
	UserID        string `json:"user_id"`
	Authorization string `json:"authorization"`
	Cookie        string `json:"cookie"`
}

// purgeResponse is the body of a 200 from POST /purge, saying what was
// purged: {"purged":{"user_id":"U","credential":true}}, each member present
// only when asked for.
type purgeResponse struct {
	Purged purgeDone `json:"purged"`
}

type purgeDone struct {
	UserID     string `json:"user_id,omitempty"`
	Credential bool   `json:"credential,omitempty"`
}

// maxUserIDLen bounds a user id from a webhook or a purge: Authgear's are
// UUIDs (36 characters). A longer one is not Authgear's, and would cost a
// Redis key, a pub/sub message and a log line of the sender's choosing.
const maxUserIDLen = 64

// validUserID accepts what Authgear issues as a user id, with room to spare:
// up to 64 letters, digits, '-', '_' and '.'.
func validUserID(id string) bool {
	if id == "" || len(id) > maxUserIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// errorResponse is the body of every refusal of the webhook and purge API.
type errorResponse struct {
	Error string `json:"error"`
}

// handlePurge serves POST /purge for applications: Authgear sends no webhook
// for sign-out or session revocation, so the app tells us what it discards.
// Answers: 200 (purgeResponse), 400 malformed request, 401 wrong admin token,
// 413 body over 64 KiB, 503 the purge failed (retry it).
func handlePurge(adminToken string, purger Purger, cookiePrefix string, shapes CredentialShapes, purges *prometheus.CounterVec, logger *slog.Logger) http.Handler {
	if adminToken == "" {
		// Mounted only when ADMIN_TOKEN is set; an empty one would be guessed.
		panic("handlePurge: empty admin token")
	}
	// Comparing digests keeps the comparison constant-time whatever the
	// length of the presented token, so its length leaks nothing either.
	want := sha256.Sum256([]byte(adminToken))
	names := newCookieNames(cookiePrefix)
	shapeCheck := shapes.checker()
	purgedUser := purges.WithLabelValues(causeAPIUser)
	purgedCredential := purges.WithLabelValues(causeAPICredential)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !bearerIs(r.Header, want) {
			logger.LogAttrs(r.Context(), slog.LevelDebug, "purge refused: wrong or missing admin token")
			w.Header().Set("WWW-Authenticate", "Bearer")
			writeJSON(w, http.StatusUnauthorized, errorResponse{"wrong or missing admin token"})
			return
		}
		req, status, err := decodePurgeRequest(w, r)
		if err != nil {
			writeJSON(w, status, errorResponse{err.Error()})
			return
		}
		if req.UserID != "" && !validUserID(req.UserID) {
			writeJSON(w, http.StatusBadRequest, errorResponse{"malformed user_id"})
			return
		}
		var creds resolver.Credentials
		if req.Authorization != "" || req.Cookie != "" {
			// The same parser as /auth, on the same headers: the same key.
			h := http.Header{}
			if req.Authorization != "" {
				h["Authorization"] = []string{req.Authorization}
			}
			if req.Cookie != "" {
				h["Cookie"] = []string{req.Cookie}
			}
			c, _, _, err := readCredentials(h, names, shapeCheck)
			switch {
			case err != nil:
				writeJSON(w, http.StatusBadRequest, errorResponse{"malformed credential"})
				return
			case c.Empty():
				// Nothing /auth would have cached: most likely a mistake
				// (another scheme, a cookie prefix that does not match, a
				// credential of a shape Authgear never issues).
				writeJSON(w, http.StatusBadRequest, errorResponse{"no Authgear credential in authorization or cookie"})
				return
			}
			creds = c
		}

		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), purgeTimeout)
		defer cancel()
		var done purgeDone
		var errs []error
		// Both are attempted even if one fails: each is idempotent, and the
		// caller retries the whole request on a 503.
		if !creds.Empty() {
			if err := purger.PurgeCredentials(ctx, creds); err != nil {
				errs = append(errs, err)
			} else {
				purgedCredential.Inc()
				done.Credential = true
			}
		}
		if req.UserID != "" {
			// An admin purging a user wants their access re-checked: their
			// JWTs issued until now stop working too.
			if err := purger.RevokeUser(ctx, req.UserID); err != nil {
				errs = append(errs, err)
			} else {
				purgedUser.Inc()
				done.UserID = req.UserID
			}
		}
		if err := errors.Join(errs...); err != nil {
			logger.LogAttrs(r.Context(), slog.LevelError, "purge failed",
				slog.String("user_id", req.UserID), slog.Bool("credential", !creds.Empty()),
				slog.String("error", err.Error()))
			writeJSON(w, http.StatusServiceUnavailable, errorResponse{"purge failed"})
			return
		}
		logger.LogAttrs(r.Context(), slog.LevelInfo, "purged",
			slog.String("user_id", done.UserID), slog.Bool("credential", done.Credential))
		writeJSON(w, http.StatusOK, purgeResponse{done})
	})
}

// bearerIs reports whether h carries exactly one "Authorization: Bearer T"
// whose T has the SHA-256 digest want.
func bearerIs(h http.Header, want [sha256.Size]byte) bool {
	auth := h["Authorization"]
	if len(auth) != 1 {
		return false
	}
	scheme, token, _ := strings.Cut(auth[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.Trim(token, " ")))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// decodePurgeRequest reads one JSON object with known fields only, and at
// least one of them set; otherwise it returns the status to answer.
func decodePurgeRequest(w http.ResponseWriter, r *http.Request) (purgeRequest, int, error) {
	var req purgeRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxPurgeBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	if err == nil {
		switch err2 := dec.Decode(&struct{}{}); err2 {
		case io.EOF:
		case nil:
			err = errors.New("more than one JSON value")
		default:
			err = err2 // may be the size limit, met after the object
		}
	}
	if tooLarge := new(http.MaxBytesError); errors.As(err, &tooLarge) {
		return req, http.StatusRequestEntityTooLarge, errors.New("body too large")
	}
	if err != nil {
		return req, http.StatusBadRequest, errors.New("malformed JSON: " + err.Error())
	}
	if req == (purgeRequest{}) {
		return req, http.StatusBadRequest, errors.New("nothing to purge: set user_id, authorization or cookie")
	}
	return req, 0, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
