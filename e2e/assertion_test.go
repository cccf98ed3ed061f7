//go:build e2e

package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/authgear/authgear-forwardauth/resolver"
)

// The signed identity (ASSERTION_KEYS_FILE, set by newStack): checked through
// every gateway with go-jose, independently of the service's JOSE library.
func init() {
	contract = append(contract, assertionContract...)
}

const headerAssertion = "X-Authgear-Jwt-Assertion"

var assertionContract = []struct {
	name string
	run  func(t *testing.T, st *stack, base, gw string)
}{
	{"assertion/the upstream receives a token for its host and user", func(t *testing.T, st *stack, base, _ string) {
		r := do(t, base, "GET", "/hello", "", with(bearer(tokenAlice), []string{"Accept", acceptJSON})...)
		claims := upstreamAssertion(t, st, allowed(t, st, r), userAlice.UserID)
		roles, _ := claims["https://authgear.com/claims/user/roles"].([]any)
		if len(roles) != 2 || roles[0] != "editor" || claims["https://authgear.com/claims/user/is_verified"] != true {
			t.Errorf("claims %v", claims)
		}
		r = do(t, base, "GET", "/admin/panel", "", bearer(tokenAdmin)...)
		upstreamAssertion(t, st, allowed(t, st, r), userAdmin.UserID)
	}},
	{"assertion/optional: a signed-in user's token, nobody's when nobody signed in", func(t *testing.T, st *stack, base, _ string) {
		r := do(t, base, "GET", "/public/page", "", bearer(tokenAlice)...)
		upstreamAssertion(t, st, allowed(t, st, r), userAlice.UserID)
		r = do(t, base, "GET", "/public/page", "", headerAssertion, forgedAssertion(t))
		noAssertion(t, allowed(t, st, r))
	}},
	{"assertion/a client's own never reaches the upstream", func(t *testing.T, st *stack, base, _ string) {
		forged := forgedAssertion(t)
		for _, spelling := range []string{headerAssertion, "x-authgear-jwt-assertion", "X-AUTHGEAR-JWT-ASSERTION"} {
			for _, req := range []struct {
				uri    string
				header []string
			}{
				{"/hello", bearer(tokenAlice)},             // allowed
				{"/public/page", bearer(tokenAlice)},       // optional, signed in
				{"/public/page", nil},                      // optional, nobody
				{"/public/page", bearer("not-a-token")},    // optional, bad token
				{"/hello", nil},                            // denied: 401
				{"/hello", bearer("not-a-token")},          // denied: 401
				{"/admin/panel", bearer(tokenAlice)},       // denied: 403
				{"/hello", bearer(tokenAnon)},              // denied: 403
				{"/hello", []string{"Accept", acceptHTML}}, // denied: sign-in redirect
			} {
				r := doRaw(t, base, "GET", req.uri, append([]string{spelling, forged, spelling, forged}, req.header...))
				if !st.upstream.reached(r.id) {
					if r.status >= 200 && r.status < 300 {
						t.Errorf("%s %s: status %d but the upstream was not reached", spelling, req.uri, r.status)
					}
					continue
				}
				e := r.echoed(t)
				for name, values := range e.Headers {
					if http.CanonicalHeaderKey(name) != headerAssertion {
						continue
					}
					for _, v := range values {
						if v == forged {
							t.Errorf("%s %s %v: the client's assertion reached the upstream", spelling, req.uri, req.header)
						}
					}
				}
				if len(req.header) == 2 && req.header[1] == "Bearer "+tokenAlice {
					upstreamAssertion(t, st, e, userAlice.UserID)
				} else {
					noAssertion(t, e)
				}
			}
		}
	}},
}

// assertionForged reports what is wrong with the X-Authgear-Jwt-Assertion
// values an application saw (the hostile suite's CGI view): more than one,
// one when nobody is signed in, or one that is not the service's kind for
// want (ES256, this host, want's user). The claims are read unverified:
// the hostile suite's forgeries are fixed strings; the contract above checks
// signatures.
func assertionForged(values []string, want *resolver.Identity) []string {
	switch {
	case len(values) > 1:
		return []string{fmt.Sprintf("%s %d times", headerAssertion, len(values))}
	case len(values) == 0 && want != nil:
		return []string{headerAssertion + " missing"}
	case len(values) == 0 || (want == nil && values[0] == ""):
		return nil
	case want == nil:
		return []string{fmt.Sprintf("%s %.40q... with nobody signed in", headerAssertion, values[0])}
	}
	var header, claims struct {
		Alg string `json:"alg"`
		Iss string `json:"iss"`
		Aud string `json:"aud"`
		Sub string `json:"sub"`
	}
	parts := strings.Split(values[0], ".")
	if len(parts) == 3 {
		h, _ := base64.RawURLEncoding.DecodeString(parts[0])
		c, _ := base64.RawURLEncoding.DecodeString(parts[1])
		_ = json.Unmarshal(h, &header)
		_ = json.Unmarshal(c, &claims)
	}
	if header.Alg != "ES256" || claims.Iss != "authgear-forwardauth" || claims.Aud != appHost || claims.Sub != want.UserID {
		return []string{fmt.Sprintf("%s %.60q..., not the service's for %s", headerAssertion, values[0], want.UserID)}
	}
	return nil
}

// upstreamAssertion checks the upstream saw exactly one assertion, that it
// verifies against the service's JWKS, for this host and user, and returns
// its claims.
func upstreamAssertion(t *testing.T, st *stack, e echo, sub string) map[string]any {
	t.Helper()
	got := e.Headers[headerAssertion]
	if len(got) != 1 || got[0] == "" {
		t.Fatalf("upstream saw %s: %q, want one token", headerAssertion, got)
	}
	tok, err := josejwt.ParseSigned(got[0], []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("not an ES256 JWT: %v", err)
	}
	jwks := serviceJWKS(t, st)
	keys := jwks.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q is not in the service's JWKS", tok.Headers[0].KeyID)
	}
	var std josejwt.Claims
	var all map[string]any
	if err := tok.Claims(keys[0].Key, &std, &all); err != nil {
		t.Fatalf("the signature does not verify: %v", err)
	}
	if err := std.Validate(josejwt.Expected{Issuer: "authgear-forwardauth", Subject: sub, AnyAudience: josejwt.Audience{appHost}, Time: time.Now()}); err != nil {
		t.Fatalf("claims %v: %v", all, err)
	}
	return all
}

// noAssertion checks the upstream saw no assertion (absent or empty).
func noAssertion(t *testing.T, e echo) {
	t.Helper()
	for name, values := range e.Headers {
		if http.CanonicalHeaderKey(name) != headerAssertion {
			continue
		}
		for _, v := range values {
			if v != "" {
				t.Errorf("upstream saw %s: %q, want none", name, values)
			}
		}
	}
}

func serviceJWKS(t *testing.T, st *stack) jose.JSONWebKeySet {
	t.Helper()
	resp, err := client.Get("http://" + st.service + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || resp.StatusCode != 200 {
		t.Fatalf("JWKS: %d %v", resp.StatusCode, err)
	}
	return set
}

// forgedAssertion is what an attacker would like the application to trust:
// admin, for this host, signed with a key of their own.
func forgedAssertion(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, err := josejwt.Signed(signer).Claims(josejwt.Claims{
		Issuer: "authgear-forwardauth", Subject: userAdmin.UserID, Audience: josejwt.Audience{appHost},
		IssuedAt: josejwt.NewNumericDate(now), Expiry: josejwt.NewNumericDate(now.Add(time.Hour)),
	}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// doRaw is do with header names sent exactly as spelled.
func doRaw(t *testing.T, base, method, uri string, headers []string) result {
	t.Helper()
	return send(t, base, request{method: method, uri: uri, raw: true, headers: headers})
}
