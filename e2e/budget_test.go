//go:build e2e

package e2e

import (
	"net/http"
	"testing"

	"github.com/authgear/authgear-forwardauth/resolver/resolvertest"
)

// TestGatewaysPassOnTooManyRequests: a client over its budget of resolver
// calls (RESOLVER_CLIENT_RATE) gets a 429 with Retry-After through every
// shipped gateway (nginx through its @forwardauth_500 mapping, since
// auth_request turns any other status into a 500), the upstream is not
// reached and Authgear is not called, while cached credentials still work.
func TestGatewaysPassOnTooManyRequests(t *testing.T) {
	for _, gw := range gateways {
		t.Run(gw.name, func(t *testing.T) {
			st := newStackWith(t, stackOptions{setup: func(*resolvertest.Server) []string {
				return []string{"RESOLVER_CLIENT_RATE=1", "RESOLVER_CLIENT_BURST=3"}
			}})
			base := gw.start(t, st)
			allowed(t, st, do(t, base, "GET", "/hello", "", bearer(tokenAlice)...))
			blocked(t, st, do(t, base, "GET", "/hello", "", bearer(tokenUnknown)...), http.StatusUnauthorized)
			blocked(t, st, do(t, base, "GET", "/hello", "", bearer(resolvertest.Token("flood1"))...), http.StatusUnauthorized)
			calls := st.authgear.Calls()
			r := do(t, base, "GET", "/hello", "", bearer(resolvertest.Token("flood2"))...)
			blocked(t, st, r, http.StatusTooManyRequests)
			if got := r.header.Get("Retry-After"); got != "1" {
				t.Errorf("Retry-After = %q, want 1", got)
			}
			if n := st.authgear.Calls(); n != calls {
				t.Errorf("Authgear called %d times for a client over budget", n-calls)
			}
			allowed(t, st, do(t, base, "GET", "/hello", "", bearer(tokenAlice)...))
		})
	}
}
