package handler

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgear/authgear-forwardauth/resolver"
	"github.com/authgear/authgear-forwardauth/resolver/resolvertest"
)

const adminToken = "admin-7f3c9a1e5b2d"

type purgeStack struct {
	handler http.Handler
	purger  *fakePurger
	purges  *prometheus.CounterVec
}

func newPurgeStack(t testing.TB, cookiePrefix string, shapes ...CredentialShapes) *purgeStack {
	t.Helper()
	s := &purgeStack{purger: &fakePurger{}, purges: newPurgeCounter(prometheus.NewRegistry())}
	sh := ShapesAuthgear
	if len(shapes) > 0 {
		sh = shapes[0]
	}
	s.handler = handlePurge(adminToken, s.purger, cookiePrefix, sh, s.purges, discard)
	return s
}

func (s *purgeStack) post(auth []string, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "/purge", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header["Authorization"] = auth
	w := httptest.NewRecorder()
	s.handler.ServeHTTP(w, r)
	return w
}

var admin = []string{"Bearer " + adminToken}

func TestPurgeAdminToken(t *testing.T) {
	tests := []struct {
		name   string
		auth   []string
		status int
	}{
		{"right token", admin, 200},
		{"scheme in any case", []string{"bearer " + adminToken}, 200},
		{"missing", nil, 401},
		{"wrong token", []string{"Bearer admin-wrong"}, 401},
		{"a prefix of the token", []string{"Bearer " + adminToken[:5]}, 401},
		{"the token and more", []string{"Bearer " + adminToken + "x"}, 401},
		{"no token", []string{"Bearer"}, 401},
		{"other scheme with the token", []string{"Basic " + adminToken}, 401},
		{"the token alone", []string{adminToken}, 401},
		{"two headers", []string{"Bearer " + adminToken, "Bearer " + adminToken}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newPurgeStack(t, "")
			w := s.post(tt.auth, `{"user_id":"u1"}`)
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d (%s)", w.Code, tt.status, w.Body)
			}
			if tt.status == 401 {
				if got := w.Header().Get("WWW-Authenticate"); got != "Bearer" {
					t.Errorf("WWW-Authenticate = %q, want Bearer", got)
				}
				if n := s.purger.calls(); n != 0 {
					t.Errorf("purged %d times without the admin token", n)
				}
			}
		})
	}
}

// creds is what /auth reads from an Authorization and a Cookie header: the
// purge API must name the same decision.
func creds(t *testing.T, prefix string, shapes CredentialShapes, authorization, cookie string) resolver.Credentials {
	t.Helper()
	h := http.Header{}
	if authorization != "" {
		h.Set("Authorization", authorization)
	}
	if cookie != "" {
		h.Set("Cookie", cookie)
	}
	c, _, _, err := readCredentials(h, newCookieNames(prefix), shapes.checker())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPurgeWhatWasAsked(t *testing.T) {
	tok, s1 := resolvertest.Token("T"), resolvertest.SessionToken("S1")
	a1, at1 := resolvertest.Token("A1"), resolvertest.Token("AT1")
	tests := []struct {
		name      string
		prefix    string
		shapes    CredentialShapes
		body      string
		users     []string
		creds     []resolver.Credentials
		response  string
		byUser    float64
		byCredent float64
	}{
		{
			name: "user", body: `{"user_id":"u1"}`, users: []string{"u1"},
			response: `{"purged":{"user_id":"u1"}}`, byUser: 1,
		},
		{
			name: "bearer", body: `{"authorization":"Bearer ` + tok + `"}`,
			creds:    []resolver.Credentials{{Bearer: tok}},
			response: `{"purged":{"credential":true}}`, byCredent: 1,
		},
		{
			name: "any shape with CREDENTIAL_SHAPES=any", shapes: ShapesAny, body: `{"authorization":"Bearer T-1.x_y"}`,
			creds:    []resolver.Credentials{{Bearer: "T-1.x_y"}},
			response: `{"purged":{"credential":true}}`, byCredent: 1,
		},
		{
			name: "bearer scheme in any case, blanks around the token", body: `{"authorization":"bEARer  ` + tok + ` "}`,
			creds:    []resolver.Credentials{{Bearer: tok}},
			response: `{"purged":{"credential":true}}`, byCredent: 1,
		},
		{
			name: "cookie among the app's cookies", body: `{"cookie":"theme=dark; session=` + s1 + `; csrf=abc; app_session=` + a1 + `; app_access_token=` + at1 + `; session=later"}`,
			creds:    []resolver.Credentials{{Session: s1, AppSession: a1, AppAccessToken: at1}},
			response: `{"purged":{"credential":true}}`, byCredent: 1,
		},
		{
			name: "cookie with a prefix", prefix: "myapp_", body: `{"cookie":"session=other; myapp_session=` + s1 + `"}`,
			creds:    []resolver.Credentials{{Session: s1}},
			response: `{"purged":{"credential":true}}`, byCredent: 1,
		},
		{
			name: "authorization and cookie are one credential set", body: `{"authorization":"Bearer ` + tok + `","cookie":"session=` + s1 + `"}`,
			creds:    []resolver.Credentials{{Bearer: tok, Session: s1}},
			response: `{"purged":{"credential":true}}`, byCredent: 1,
		},
		{
			name: "a misshapen bearer beside a cookie: the cookie, as /auth reads it", body: `{"authorization":"Bearer T-1.x_y","cookie":"session=` + s1 + `"}`,
			creds:    []resolver.Credentials{{Session: s1}},
			response: `{"purged":{"credential":true}}`, byCredent: 1,
		},
		{
			name: "another scheme beside a cookie: the cookie, as /auth reads it", body: `{"authorization":"Basic dXNlcjpwYXNz","cookie":"session=` + s1 + `"}`,
			creds:    []resolver.Credentials{{Session: s1}},
			response: `{"purged":{"credential":true}}`, byCredent: 1,
		},
		{
			name: "user and credential", body: `{"user_id":"u1","authorization":"Bearer ` + tok + `"}`,
			users: []string{"u1"}, creds: []resolver.Credentials{{Bearer: tok}},
			response: `{"purged":{"user_id":"u1","credential":true}}`, byUser: 1, byCredent: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newPurgeStack(t, tt.prefix, tt.shapes)
			w := s.post(admin, tt.body)
			if w.Code != 200 {
				t.Fatalf("status = %d, want 200 (%s)", w.Code, w.Body)
			}
			if got := strings.TrimSpace(w.Body.String()); got != tt.response {
				t.Errorf("body = %s, want %s", got, tt.response)
			}
			if !slices.Equal(s.purger.users, tt.users) {
				t.Errorf("purged users = %q, want %q", s.purger.users, tt.users)
			}
			if !slices.Equal(s.purger.revoked, tt.users) {
				t.Errorf("revoked users = %q, want %q: a purge by user_id also blocks their JWTs", s.purger.revoked, tt.users)
			}
			if !slices.Equal(s.purger.creds, tt.creds) {
				t.Errorf("purged credentials = %+v, want %+v", s.purger.creds, tt.creds)
			}
			// The key /auth computes comes from readCredentials: check the
			// purge names the very same credentials.
			var req purgeRequest
			if err := json.Unmarshal([]byte(tt.body), &req); err != nil {
				t.Fatal(err)
			}
			if req.Authorization != "" || req.Cookie != "" {
				if want := creds(t, tt.prefix, tt.shapes, req.Authorization, req.Cookie); len(s.purger.creds) != 1 || s.purger.creds[0] != want {
					t.Errorf("purged %+v, /auth reads %+v", s.purger.creds, want)
				}
			}
			if got := testutil.ToFloat64(s.purges.WithLabelValues("api_user")); got != tt.byUser {
				t.Errorf("api_user purges = %v, want %v", got, tt.byUser)
			}
			if got := testutil.ToFloat64(s.purges.WithLabelValues("api_credential")); got != tt.byCredent {
				t.Errorf("api_credential purges = %v, want %v", got, tt.byCredent)
			}
		})
	}
}

func TestPurgeRefusesMalformedRequests(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		status int
	}{
		{"empty body", ``, 400},
		{"not JSON", `user_id=u1`, 400},
		{"truncated", `{"user_id":"u1"`, 400},
		{"empty object", `{}`, 400},
		{"null", `null`, 400},
		{"an array", `[{"user_id":"u1"}]`, 400},
		{"empty values", `{"user_id":"","authorization":"","cookie":""}`, 400},
		{"unknown field", `{"user_id":"u1","session_id":"s"}`, 400},
		{"wrong type", `{"user_id":7}`, 400},
		{"two objects", `{"user_id":"u1"}{"user_id":"u2"}`, 400},
		{"trailing garbage", `{"user_id":"u1"} x`, 400},
		{"an empty object after", `{"user_id":"u1"} {}`, 400},
		{"null after", `{"user_id":"u1"}null`, 400},
		{"another scheme only", `{"authorization":"Basic dXNlcjpwYXNz"}`, 400},
		{"malformed bearer", `{"authorization":"Bearer a b"}`, 400},
		{"bearer without a token", `{"authorization":"Bearer "}`, 400},
		{"no Authgear cookie", `{"cookie":"theme=dark; csrf=abc"}`, 400},
		{"Authgear cookie with an invalid value", `{"cookie":"session=a\\\\b"}`, 400},
		{"a bad credential fails the user purge too", `{"user_id":"u1","authorization":"Bearer a\"b"}`, 400},
		{"a shape Authgear never issues", `{"authorization":"Bearer T-1.x_y","cookie":"session=S1"}`, 400},
		{"oversized", `{"user_id":"` + strings.Repeat("u", maxPurgeBody) + `"}`, 413},
		{"oversized after the object", `{"user_id":"u1"}` + strings.Repeat(" ", maxPurgeBody), 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newPurgeStack(t, "")
			w := s.post(admin, tt.body)
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d (%s)", w.Code, tt.status, w.Body)
			}
			var e errorResponse
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Errorf("body %q is not a JSON error", w.Body)
			}
			if n := s.purger.calls(); n != 0 {
				t.Errorf("purged %d times", n)
			}
		})
	}
}

func TestPurgeFailureIs503(t *testing.T) {
	s1 := resolvertest.SessionToken("S1")
	for _, body := range []string{`{"user_id":"u1"}`, `{"cookie":"session=` + s1 + `"}`, `{"user_id":"u1","cookie":"session=` + s1 + `"}`} {
		t.Run(body, func(t *testing.T) {
			s := newPurgeStack(t, "")
			s.purger.err = errors.New("redis: connection refused")
			w := s.post(admin, body)
			if w.Code != 503 {
				t.Fatalf("status = %d, want 503", w.Code)
			}
			if strings.Contains(w.Body.String(), "connection refused") {
				t.Errorf("internal error shown to the caller: %s", w.Body)
			}
			for _, cause := range []string{"api_user", "api_credential"} {
				if got := testutil.ToFloat64(s.purges.WithLabelValues(cause)); got != 0 {
					t.Errorf("failed purge counted as %s", cause)
				}
			}
		})
	}
}

func TestPurgeWithoutAdminTokenPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("an empty admin token was accepted")
		}
	}()
	handlePurge("", &fakePurger{}, "", ShapesAuthgear, newPurgeCounter(prometheus.NewRegistry()), discard)
}
