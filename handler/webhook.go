package handler

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// UserPurger forgets every cached decision of a user. RevokeUser also
// blocks the user's JWT access tokens issued until now, which a local check
// would otherwise accept until they expire: for a user who lost access.
type UserPurger interface {
	PurgeUser(ctx context.Context, userID string) error
	RevokeUser(ctx context.Context, userID string) error
}

// maxWebhookBody bounds an Authgear event: a user object with its standard
// and custom attributes is a few KiB.
const maxWebhookBody = 1 << 20

// signatureHeader carries the lowercase hex HMAC-SHA256 of the raw body.
const signatureHeader = "X-Authgear-Body-Signature"

// purgesUser reports whether an Authgear event changes who a user is or
// whether they may enter, so that their cached decisions are no longer true.
// The list is what authgear-facts.md says is delivered to webhooks; every
// identity.* event is included (not only email, phone and username), since a
// purge costs one resolver call and a missed one costs a stale identity.
// Sign-out and session revocation are not delivered: POST /purge covers them.
func purgesUser(eventType string) bool {
	switch eventType {
	case "user.disabled", "user.reenabled", "user.deleted", "user.anonymized",
		"user.deletion_scheduled", "user.anonymization_scheduled",
		"user.profile.updated", "user.anonymous.promoted":
		return true
	}
	return strings.HasPrefix(eventType, "identity.")
}

// revokesAccess reports whether an event takes a user's access away (Authgear
// then deletes their sessions), so that their JWTs must stop working too.
// The other purging events change who a user is, which a JWT's claims keep
// until it is refreshed.
func revokesAccess(eventType string) bool {
	switch eventType {
	case "user.disabled", "user.deleted", "user.anonymized":
		return true
	}
	return false
}

// webhookResult is what one delivery came to: the answer, and what is
// logged and counted about it.
type webhookResult struct {
	status  int
	body    any
	outcome string // for the log: purged, ignored, or why it was refused
	event   string // the event type, once the signature is verified
	userID  string
	err     error
}

// handleWebhook serves POST /webhooks/authgear: Authgear's non-blocking
// events, each purging the cached decisions of the user it is about when it
// may have changed them. Answers: 200 {"purged":true} or {"ignored":true},
// 400 signed but malformed, 401 missing or wrong signature, 413 body over
// 1 MiB, 503 the purge failed. Authgear does not retry, so a 503 is for the
// operator: it shows in forwardauth_webhook_requests_total and the log.
func handleWebhook(secret string, purger UserPurger, purges *prometheus.CounterVec, logger *slog.Logger, reg prometheus.Registerer) http.Handler {
	if secret == "" {
		// Mounted only when AUTHGEAR_WEBHOOK_SECRET is set; with an empty key
		// anyone could sign.
		panic("handleWebhook: empty secret")
	}
	key := []byte(secret)
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "forwardauth_webhook_requests_total",
		Help: "Authgear webhook deliveries by the status answered.",
	}, []string{"status"})
	reg.MustRegister(requests)
	counted := map[int]prometheus.Counter{}
	for _, s := range []int{http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized,
		http.StatusRequestEntityTooLarge, http.StatusServiceUnavailable} {
		counted[s] = requests.WithLabelValues(strconv.Itoa(s))
	}
	purged := purges.WithLabelValues(causeWebhook)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res := serveWebhook(w, r, key, purger)
		if res.status == http.StatusOK && res.outcome == "purged" {
			purged.Inc()
		}
		counted[res.status].Inc()
		// One line per delivery; never the body (personal data) nor the
		// signature.
		attrs := []slog.Attr{slog.Int("status", res.status), slog.String("outcome", res.outcome)}
		if res.event != "" {
			attrs = append(attrs, slog.String("event", clip(res.event)))
		}
		if res.userID != "" {
			attrs = append(attrs, slog.String("user_id", res.userID))
		}
		level := slog.LevelInfo
		if res.err != nil {
			level = slog.LevelError
			attrs = append(attrs, slog.String("error", res.err.Error()))
		}
		logger.LogAttrs(r.Context(), level, "authgear webhook", attrs...)
		writeJSON(w, res.status, res.body)
	})
}

func serveWebhook(w http.ResponseWriter, r *http.Request, key []byte, purger UserPurger) webhookResult {
	refuse := func(status int, why string) webhookResult {
		return webhookResult{status: status, body: errorResponse{why}, outcome: why}
	}
	// Checked before reading the body: an unsigned request costs nothing.
	sig := r.Header[signatureHeader]
	if len(sig) != 1 {
		return refuse(http.StatusUnauthorized, "missing signature")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if tooLarge := new(http.MaxBytesError); errors.As(err, &tooLarge) {
		return refuse(http.StatusRequestEntityTooLarge, "body too large")
	}
	if err != nil {
		return refuse(http.StatusBadRequest, "could not read body")
	}
	// Nothing of the body is looked at before it is known to be Authgear's.
	if !validSignature(key, body, sig[0]) {
		return refuse(http.StatusUnauthorized, "wrong signature")
	}

	var event struct {
		Type    string          `json:"type"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(body, &event); err != nil || event.Type == "" {
		return refuse(http.StatusBadRequest, "malformed event")
	}
	if !purgesUser(event.Type) {
		// The payload of an event we ignore is not checked: its shape is
		// none of our business.
		return webhookResult{status: http.StatusOK, body: map[string]bool{"ignored": true}, outcome: "ignored", event: event.Type}
	}
	var payload struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	if err := json.Unmarshal(event.Payload, &payload); err != nil || payload.User.ID == "" {
		res := refuse(http.StatusBadRequest, "event without payload.user.id")
		res.event = event.Type
		return res
	}
	if !validUserID(payload.User.ID) {
		res := refuse(http.StatusBadRequest, "malformed payload.user.id")
		res.event = event.Type
		return res
	}

	res := webhookResult{event: event.Type, userID: payload.User.ID}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), purgeTimeout)
	defer cancel()
	purge := purger.PurgeUser
	if revokesAccess(event.Type) {
		purge = purger.RevokeUser
	}
	if err := purge(ctx, payload.User.ID); err != nil {
		res.status, res.body, res.outcome, res.err = http.StatusServiceUnavailable, errorResponse{"purge failed"}, "purge failed", err
		return res
	}
	res.status, res.body, res.outcome = http.StatusOK, map[string]bool{"purged": true}, "purged"
	return res
}

// validSignature reports whether sig is the HMAC-SHA256 of body under key in
// lowercase hex, as Authgear sends it. The hex strings are compared, not the
// decoded bytes, so an uppercase or otherwise re-encoded signature is refused:
// it is not what Authgear sends, hence not from Authgear.
func validSignature(key, body []byte, sig string) bool {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	want := make([]byte, hex.EncodedLen(sha256.Size))
	hex.Encode(want, m.Sum(nil))
	return hmac.Equal([]byte(sig), want)
}
