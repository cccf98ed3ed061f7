package handler

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// FuzzCallback: whatever comes back to /_forwardauth/callback, the answer is
// a redirect only for a state this service signed, unexpired, to a host of
// LOGIN_RETURN_HOSTS; otherwise one of the fixed pages, which repeats
// nothing of the request but a signed deep link.
func FuzzCallback(f *testing.F) {
	clock := newClock()
	login := signinLogin(f, clock, "")
	h := handleCallback(login, newCookieNames(""), newSigninCounters(prometheus.NewRegistry()), discard)
	sign := func(raw string) string {
		u, _ := url.Parse(raw)
		s, _ := login.Signin.State.Sign(u)
		return s
	}
	good := sign("https://app.example/orders/42?tab=items")
	for _, seed := range []struct {
		query, cookie string
		age           uint16 // minutes since signing
	}{
		{"state=" + good + "&x_traceparent=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "session=s", 0},
		{"state=" + good, "", 0},
		{"state=" + good, "session=s", 11},
		{"error=access_denied&error_description=%3Cscript%3E&state=" + good, "session=s", 0},
		{"state=" + sign("https://evil.example/"), "session=s", 0},
		{"state=" + sign("https://app.example:8443/p"), "app_session=a", 0},
		{"state=" + sign("https://x.apps.example/p") + "&state=x", "session=s", 0},
		{"state=AQ.AA&error=", "session=\x00", 0},
		{"%zz&state=;", "", 0},
	} {
		f.Add(seed.query, seed.cookie, seed.age)
	}
	f.Fuzz(func(t *testing.T, query, cookie string, age uint16) {
		clock.Advance(time.Duration(age) * time.Minute)
		defer clock.Advance(-time.Duration(age) * time.Minute)
		r := httptest.NewRequest(http.MethodGet, "/_forwardauth/callback", nil)
		r.URL.RawQuery = query
		r.Header.Set("Cookie", cookie)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)

		q := r.URL.Query()
		// verified may be returned to; link is what a refusal may link to.
		var verified *url.URL
		link := "/"
		if states := q["state"]; len(states) == 1 {
			st, err := login.Signin.State.Verify(states[0])
			if st.ReturnURL != nil && login.ReturnAllowed(st.ReturnURL) {
				link = st.ReturnURL.String()
				if err == nil {
					verified = st.ReturnURL
				}
			}
		}
		switch w.Code {
		case http.StatusFound:
			if verified == nil || q.Has("error") || w.Header().Get("Location") != verified.String() {
				t.Fatalf("redirected to %q for query %q", w.Header().Get("Location"), query)
			}
		case http.StatusBadRequest, http.StatusForbidden, http.StatusInternalServerError:
			if w.Header().Get("Location") != "" {
				t.Fatalf("a refusal carries Location %q", w.Header().Get("Location"))
			}
			body := w.Body.String()
			for _, name := range []string{"error", "error_description", "x_traceparent"} {
				for _, v := range q[name] {
					if len(v) >= 6 && strings.Contains(body, v) && !strings.Contains(pageTexts, v) {
						t.Fatalf("the page repeats %s=%q", name, v)
					}
				}
			}
		default:
			t.Fatalf("status %d for query %q", w.Code, query)
		}
		if want := `href="` + strings.ReplaceAll(link, "&", "&amp;") + `"`; w.Code != http.StatusFound && !strings.Contains(w.Body.String(), want) {
			t.Fatalf("the page does not link to %s: %s", want, w.Body)
		}
	})
}

// pageTexts is everything the fixed pages say, which a fuzzed value may
// happen to contain.
var pageTexts = func() string {
	var b strings.Builder
	for _, p := range []page{pageBadState, pageExpired, pageAuthgearError, pageNoCookie, pageBadReturn, pagePurgeFailed} {
		w := httptest.NewRecorder()
		writePage(w, 200, p, "/")
		b.WriteString(w.Body.String())
	}
	return b.String()
}()
