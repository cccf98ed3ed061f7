package assertion

import (
	"context"
	"net/http"
	"strconv"

	"github.com/authgear/authgear-forwardauth/resolver"
)

// JWKSMaxAge is how long verifiers may cache the JWK Set. A key added to the
// file (second, not yet signing) must be served this long before it signs.
const JWKSMaxAge = 300 // seconds

// JWKS serves the public JWK Set: every key of the file, so that tokens
// signed by a key rotated out of first place still verify.
func (i *Issuer) JWKS() http.Handler {
	body := i.keys.jwks
	length := strconv.Itoa(len(body))
	cacheControl := "public, max-age=" + strconv.Itoa(JWKSMaxAge)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", cacheControl)
		h.Set("Content-Length", length)
		h.Set("X-Content-Type-Options", "nosniff")
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(body)
	})
}

// Purger is the cache's purge interface (handler.Purger).
type Purger interface {
	PurgeUser(ctx context.Context, userID string) error
	RevokeUser(ctx context.Context, userID string) error
	PurgeCredentials(ctx context.Context, c resolver.Credentials) error
}

// DroppingPurger purges through Next and also forgets the purged tokens.
type DroppingPurger struct {
	Next   Purger
	Tokens *Issuer
}

// PurgeUser implements handler.UserPurger.
func (p DroppingPurger) PurgeUser(ctx context.Context, userID string) error {
	err := p.Next.PurgeUser(ctx, userID)
	p.Tokens.DropUser(userID)
	return err
}

// RevokeUser implements handler.UserPurger.
func (p DroppingPurger) RevokeUser(ctx context.Context, userID string) error {
	err := p.Next.RevokeUser(ctx, userID)
	p.Tokens.DropUser(userID)
	return err
}

// PurgeCredentials implements handler.Purger.
func (p DroppingPurger) PurgeCredentials(ctx context.Context, c resolver.Credentials) error {
	err := p.Next.PurgeCredentials(ctx, c)
	p.Tokens.Purged()
	return err
}
