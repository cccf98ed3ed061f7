// Command verify-assertion is an application behind authgear-forwardauth that
// trusts no identity header, only a valid X-Authgear-Jwt-Assertion: signed
// by a key the service publishes, issued by it, for this application's host,
// not expired. Reaching the application around the gateway gets a 401.
//
//	JWKS_URL=http://forwardauth:8080/.well-known/jwks.json APP_HOST=app.example.com go run ./examples/verify-assertion
package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

func main() {
	v, err := NewVerifier(context.Background(), os.Getenv("JWKS_URL"), "authgear-forwardauth", os.Getenv("APP_HOST"))
	if err != nil {
		log.Fatal(err)
	}
	http.Handle("/", v.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := UserFrom(r.Context())
		fmt.Fprintf(w, "hello %s, roles %s\n", user.ID, strings.Join(user.Roles, ","))
	})))
	log.Fatal(http.ListenAndServe(":8081", nil))
}

// Verifier checks X-Authgear-Jwt-Assertion.
type Verifier struct {
	keys             jwk.Set
	issuer, audience string
}

// NewVerifier fetches the service's JWK Set now, then again as its
// Cache-Control allows (5 minutes), so a key added to the set is known before
// it signs. audience is this application's public host, as configured: never
// take it from the request, whose Host a client reaching the application
// directly would choose.
func NewVerifier(ctx context.Context, jwksURL, issuer, audience string) (*Verifier, error) {
	cache, err := jwk.NewCache(ctx, httprc.NewClient())
	if err != nil {
		return nil, err
	}
	if err := cache.Register(ctx, jwksURL, jwk.WithMinInterval(time.Minute)); err != nil {
		return nil, err
	}
	keys, err := cache.CachedSet(jwksURL)
	if err != nil {
		return nil, err
	}
	return &Verifier{keys: keys, issuer: issuer, audience: audience}, nil
}

// User is who the assertion says is behind the request.
type User struct {
	ID       string
	Roles    []string
	Verified bool
}

// Verify returns the user of a valid assertion, or an error.
func (v *Verifier) Verify(r *http.Request) (User, error) {
	tok, err := jwt.ParseString(r.Header.Get("X-Authgear-Jwt-Assertion"),
		jwt.WithKeySet(v.keys),                // signed by a published key (by kid)
		jwt.WithIssuer(v.issuer),              // iss: ASSERTION_ISSUER
		jwt.WithAudience(v.audience),          // aud: this application's host
		jwt.WithAcceptableSkew(5*time.Second)) // exp, iat, nbf: always checked
	if err != nil {
		return User{}, err
	}
	var u User
	var roles []any
	u.ID, _ = tok.Subject()
	_ = tok.Get("https://authgear.com/claims/user/roles", &roles)
	_ = tok.Get("https://authgear.com/claims/user/is_verified", &u.Verified)
	for _, role := range roles {
		if s, ok := role.(string); ok {
			u.Roles = append(u.Roles, s)
		}
	}
	return u, nil
}

// Require answers 401 unless the request carries a valid assertion.
func (v *Verifier) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := v.Verify(r)
		if err != nil {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
	})
}

type userKey struct{}

// UserFrom is the user Require found.
func UserFrom(ctx context.Context) User {
	u, _ := ctx.Value(userKey{}).(User)
	return u
}
