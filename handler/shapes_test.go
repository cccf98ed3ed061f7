package handler

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgear/authgear-forwardauth/resolver"
	"github.com/authgear/authgear-forwardauth/resolver/resolvertest"
)

// metricValue sums the series of name whose labels include want.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

func alnum(n int) string { return strings.Repeat("aB3", n)[:n] }

// TestMisshapenCredentialsNeverReachAuthgear: each kind of credential, in
// the shapes Authgear issues and in others (31/32/33 characters, a session
// without its UUID, a JWT with alg HS256 or none, non-ASCII): what Authgear
// never issues is refused at once, without a cache lookup or a resolver call,
// and counted as misshapen; the rest is asked about.
func TestMisshapenCredentialsNeverReachAuthgear(t *testing.T) {
	fake := resolvertest.NewServer(publicHost) // only to mint JWTs
	t.Cleanup(fake.Close)
	fake.AddUser(alice)
	jwt := fake.IssueJWT(alice.UserID)
	jwtParts := strings.Split(jwt, ".")
	uuid := "0b6cbbd4-7a45-4ab4-b2c3-6ea8b6e8a001"

	type kind struct {
		name   string
		header func(v string) http.Header
		bearer bool
	}
	kinds := map[string]kind{
		"bearer":           {"bearer", func(v string) http.Header { return bearerHeader(v) }, true},
		"app_session":      {"app_session", func(v string) http.Header { return hdr("Cookie", "app_session="+v) }, false},
		"app_access_token": {"app_access_token", func(v string) http.Header { return hdr("Cookie", "app_access_token="+v) }, false},
		"session":          {"session", func(v string) http.Header { return hdr("Cookie", "session="+v) }, false},
	}
	tests := []struct {
		kind   string
		name   string
		value  string
		shaped bool
	}{
		{"bearer", "31 characters", alnum(31), false},
		{"bearer", "32 characters", alnum(32), true},
		{"bearer", "33 characters", alnum(33), false},
		{"bearer", "32 characters with a dash", alnum(31) + "-", false},
		{"bearer", "32 characters of base64", alnum(30) + "+/", false},
		{"bearer", "non-ASCII, 32 bytes", strings.Repeat("é", 16), false},
		{"bearer", "a session token", uuid + "." + alnum(32), false},
		{"bearer", "JWT, RS256 at+jwt", jwt, true},
		{"bearer", "JWT, alg HS256", fake.IssueJWT(alice.UserID, resolvertest.SignedWithHMAC([]byte("k"))), false},
		{"bearer", "JWT, alg none, unsigned", fake.IssueJWT(alice.UserID, resolvertest.Unsigned()), false},
		{"bearer", "JWT, alg none, signature kept", fake.IssueJWT(alice.UserID, resolvertest.WithHeader("alg", "none")), false},
		{"bearer", "JWT, typ JWT", fake.IssueJWT(alice.UserID, resolvertest.WithHeader("typ", "JWT")), false},
		{"bearer", "JWT, no kid", fake.IssueJWT(alice.UserID, resolvertest.WithHeader("kid", nil)), false},
		{"bearer", "JWT, header not JSON", "bm90IGpzb24." + jwtParts[1] + "." + jwtParts[2], false},
		{"bearer", "JWT, empty signature", jwtParts[0] + "." + jwtParts[1] + ".", false},
		{"bearer", "JWT, two segments", jwtParts[0] + "." + jwtParts[1], false},
		{"bearer", "JWT, four segments", jwt + "." + jwtParts[2], false},
		{"bearer", "JWT, padded", jwtParts[0] + "." + jwtParts[1] + "." + jwtParts[2] + "==", false},
		{"bearer", "JWT, non-ASCII", jwtParts[0] + "." + jwtParts[1] + "é." + jwtParts[2], false},
		{"app_session", "31 characters", alnum(31), false},
		{"app_session", "32 characters", alnum(32), true},
		{"app_session", "33 characters", alnum(33), false},
		{"app_session", "a JWT", jwt, false},
		{"app_session", "32 characters with an underscore", alnum(31) + "_", false},
		{"app_access_token", "31 characters", alnum(31), false},
		{"app_access_token", "32 characters", alnum(32), true},
		{"app_access_token", "33 characters", alnum(33), false},
		{"app_access_token", "JWT, RS256 at+jwt", jwt, true},
		{"app_access_token", "JWT, alg HS256", fake.IssueJWT(alice.UserID, resolvertest.SignedWithHMAC([]byte("k"))), false},
		{"app_access_token", "JWT, alg none", fake.IssueJWT(alice.UserID, resolvertest.Unsigned()), false},
		{"session", "uuid and 31 characters", uuid + "." + alnum(31), false},
		{"session", "uuid and 32 characters", uuid + "." + alnum(32), true},
		{"session", "uuid and 33 characters", uuid + "." + alnum(33), false},
		{"session", "upper-case uuid", strings.ToUpper(uuid) + "." + alnum(32), true},
		{"session", "32 characters without a uuid", alnum(32), false},
		{"session", "a dot and 32 characters", "." + alnum(32), false},
		{"session", "not a uuid before the dot", alnum(36) + "." + alnum(32), false},
		{"session", "uuid without dashes", strings.ReplaceAll(uuid, "-", "") + "xxxx." + alnum(32), false},
		{"session", "uuid with a non-hex digit", "g" + uuid[1:] + "." + alnum(32), false},
		{"session", "two dots", uuid + "." + alnum(15) + "." + alnum(16), false},
		{"session", "non-ASCII", uuid + "." + strings.Repeat("é", 16), false},
	}
	for _, tt := range tests {
		k := kinds[tt.kind]
		t.Run(tt.kind+"/"+tt.name, func(t *testing.T) {
			s := newStack(t, stackOptions{})
			w := s.do("GET", "/auth", k.header(tt.value))
			calls := s.authgear.Calls()
			lookups := metricValue(t, s.reg, "forwardauth_cache_lookups_total", nil)
			if !tt.shaped {
				if w.Code != 401 || calls != 0 || lookups != 0 {
					t.Fatalf("got %d with %d resolver calls and %v cache lookups, want 401 with none", w.Code, calls, lookups)
				}
				misshapen := metricValue(t, s.reg, "forwardauth_decisions_total", map[string]string{"outcome": "misshapen"})
				noCred := metricValue(t, s.reg, "forwardauth_decisions_total", map[string]string{"outcome": "no_credential"})
				// A cookie value net/http would not parse (non-ASCII) is no
				// credential at all, as for Authgear.
				if misshapen != 1 && !(noCred == 1 && !k.bearer) {
					t.Errorf("counted misshapen %v, no_credential %v; want misshapen 1", misshapen, noCred)
				}
				want := `Bearer`
				if k.bearer {
					want = `Bearer error="invalid_token"`
				}
				if got := w.Header().Get("WWW-Authenticate"); got != want {
					t.Errorf("WWW-Authenticate = %q, want %q", got, want)
				}
				return
			}
			if calls != 1 {
				t.Fatalf("a well-shaped credential made %d resolver calls, want 1", calls)
			}
			// (Unknown to this stack's Authgear, whose keys minted nothing here.)
			if w.Code != 401 || metricValue(t, s.reg, "forwardauth_decisions_total", map[string]string{"outcome": "deny"}) != 1 {
				t.Fatalf("status %d, want 401 from Authgear's answer", w.Code)
			}
		})
	}

	t.Run("CREDENTIAL_SHAPES=any asks Authgear about any well-formed value", func(t *testing.T) {
		for _, tt := range tests {
			if tt.shaped || strings.ContainsRune(tt.value, 'é') || strings.HasSuffix(tt.value, "=") {
				continue // not even a valid token or cookie value
			}
			s := newStack(t, stackOptions{shapes: ShapesAny})
			s.do("GET", "/auth", kinds[tt.kind].header(tt.value))
			if n := s.authgear.Calls(); n != 1 {
				t.Errorf("%s/%s: %d resolver calls, want 1 as before shapes", tt.kind, tt.name, n)
			}
			if n := metricValue(t, s.reg, "forwardauth_decisions_total", map[string]string{"outcome": "misshapen"}); n != 0 {
				t.Errorf("%s/%s: counted misshapen", tt.kind, tt.name)
			}
		}
	})
}

// TestMisshapenBearerFallsBackToTheCookie: Authgear ignores a bad credential
// and tries the next, so a misshapen Bearer beside a good session cookie is
// decided by the cookie, and only the cookie is sent.
func TestMisshapenBearerFallsBackToTheCookie(t *testing.T) {
	for _, bad := range []string{"garbage", alnum(33), "not-a-token-" + alnum(20)} {
		s := newStack(t, stackOptions{})
		w := s.do("GET", "/auth", hdr("Authorization", "Bearer "+bad, "Cookie", "session="+bobIDP))
		if w.Code != 200 || w.Header().Get("X-Authgear-User-Id") != bob.UserID {
			t.Fatalf("Bearer %q with bob's cookie: %d user %q, want 200 bob", bad, w.Code, w.Header().Get("X-Authgear-User-Id"))
		}
		got := s.authgear.LastRequest()
		if a := got.Header.Get("Authorization"); a != "" {
			t.Errorf("the misshapen Bearer was sent: %q", a)
		}
		if c := got.Header.Get("Cookie"); c != "session="+bobIDP {
			t.Errorf("Cookie sent = %q", c)
		}
	}
	// And the first session cookie is the one Authgear reads: a misshapen
	// one is not replaced by a later one (net/http's Request.Cookie).
	s := newStack(t, stackOptions{})
	if w := s.do("GET", "/auth", hdr("Cookie", "session=garbage; session="+bobIDP)); w.Code != 401 || s.authgear.Calls() != 0 {
		t.Fatalf("got %d with %d calls, want 401 with none", w.Code, s.authgear.Calls())
	}
	// A misshapen cookie beside a good Bearer changes nothing.
	s = newStack(t, stackOptions{})
	if w := s.do("GET", "/auth", hdr("Authorization", "Bearer "+aliceToken, "Cookie", "session=garbage; app_session=x")); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	if c := s.authgear.LastRequest().Header.Get("Cookie"); c != "" {
		t.Errorf("misshapen cookies were sent: %q", c)
	}
}

// TestMisshapenOnAnOptionalRoute: the empty identity, as for a bad
// credential, still without asking Authgear.
func TestMisshapenOnAnOptionalRoute(t *testing.T) {
	s := newStack(t, stackOptions{})
	w := s.do("GET", "/auth?optional", bearerHeader("garbage"))
	if w.Code != 200 || w.Header().Get("X-Authgear-Session-Valid") != "false" || s.authgear.Calls() != 0 {
		t.Fatalf("got %d valid %q with %d calls", w.Code, w.Header().Get("X-Authgear-Session-Valid"), s.authgear.Calls())
	}
}

func TestShapesRememberedHeadersAgree(t *testing.T) {
	fake := resolvertest.NewServer(publicHost)
	t.Cleanup(fake.Close)
	fake.AddUser(alice)
	good := fake.IssueJWT(alice.UserID)
	hs := fake.IssueJWT(alice.UserID, resolvertest.SignedWithHMAC([]byte("k")))
	var sh resolver.Shapes
	for range 3 { // the second time from memory
		if !sh.JWT(good) || sh.JWT(hs) {
			t.Fatal("shape of a good JWT or of an HS256 one misjudged")
		}
	}
	// A remembered header does not make a token of another shape pass.
	p := strings.Split(good, ".")
	if sh.JWT(p[0]+"."+p[1]) || sh.JWT(p[0]+".."+p[2]) || sh.JWT(p[0]+"."+p[1]+"."+p[2]+"!") {
		t.Fatal("a remembered header let a misshapen token through")
	}
}
