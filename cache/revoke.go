package cache

import (
	"context"
	"errors"

	"github.com/authgear/authgear-forwardauth/resolver"
)

// Revoker forgets decisions in every cache of the process and, with local
// JWT verification, keeps the deny list that reaches what no cache holds:
// tokens a local check would accept.
type Revoker struct {
	Main *Cache
	JWT  *Verified // verified tokens; nil without local verification
	Deny *DenyList // nil without local verification
}

// PurgeUser forgets every decision about userID.
func (r Revoker) PurgeUser(ctx context.Context, userID string) error {
	err := r.Main.PurgeUser(ctx, userID)
	if r.JWT != nil {
		err = errors.Join(err, r.JWT.PurgeUser(ctx, userID))
	}
	return err
}

// RevokeUser also blocks userID's JWTs issued until now.
func (r Revoker) RevokeUser(ctx context.Context, userID string) error {
	var err error
	if r.Deny != nil {
		err = r.Deny.DenyUser(ctx, userID)
	}
	return errors.Join(err, r.PurgeUser(ctx, userID))
}

// PurgeCredentials forgets the decision of c and blocks a JWT among them
// until it expires.
func (r Revoker) PurgeCredentials(ctx context.Context, c resolver.Credentials) error {
	err := r.Main.PurgeCredentials(ctx, c)
	if r.JWT != nil && c.Bearer != "" {
		err = errors.Join(err, r.JWT.PurgeToken(ctx, c.Bearer))
	}
	if r.Deny != nil && c.Bearer != "" {
		// The admin hands the token in; its claims are read unverified, which
		// can only block more.
		if jti, exp := resolver.UnverifiedTokenID(c.Bearer); jti != "" {
			err = errors.Join(err, r.Deny.DenyToken(ctx, jti, exp))
		}
	}
	return err
}
