//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/authgear/authgear-forwardauth/resolver/resolvertest"
	"github.com/authgear/authgear-forwardauth/signin"
)

// The browser sign-in through each gateway, in Debian's headless Chromium:
// the app hosts and Authgear are *.example.test names that the browser maps
// to 127.0.0.1, on the random ports of the gateway and of the fake Authgear,
// and share the parent domain example.test, Authgear's cookie domain.
const (
	browserClientID = "e2e-browser-client"
	browserSecret   = "e2e-signin-state-secret-0123456789abcdef"
	aliceLogin      = "alice@example.test"
	alicePassword   = "correct horse battery staple"
	appHostTest     = "app.example.test"
	app2HostTest    = "app2.example.test"
)

// browserGateways are the gateways the browser runs through.
var browserGateways = []string{"nginx", "traefik", "caddy"}

// writeEchoPage is the upstream's answer to a browser: the request it
// received, as JSON in #echo, and a sign-out link. Credentials show by name
// only: the screenshots are kept.
func writeEchoPage(w http.ResponseWriter, e echo) {
	h := http.Header(e.Headers).Clone()
	for i, line := range h["Cookie"] {
		var names []string
		for part := range strings.SplitSeq(line, ";") {
			name, _, _ := strings.Cut(strings.TrimSpace(part), "=")
			names = append(names, name+"=(redacted)")
		}
		h["Cookie"][i] = strings.Join(names, "; ")
	}
	if h["Authorization"] != nil {
		h["Authorization"] = []string{"(redacted)"}
	}
	e.Headers = h
	b, _ := json.MarshalIndent(e, "", "  ")
	user := "nobody"
	if ids := e.Headers["X-Authgear-User-Id"]; len(ids) == 1 && ids[0] != "" {
		user = ids[0]
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>%s</title></head>
<body><h1>%s: signed in as %s</h1><p><a id="signout" href="/_forwardauth/sign_out">Sign out</a></p>
<pre id="echo">%s</pre></body></html>
`, html.EscapeString(e.Host), html.EscapeString(e.Host+e.URI), html.EscapeString(user), html.EscapeString(string(b)))
}

// artifactsDir is where the screenshots go: $FORWARDAUTH_E2E_ARTIFACTS (CI
// keeps it), else a new temporary directory; the test prints it.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("FORWARDAUTH_E2E_ARTIFACTS")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "forwardauth-e2e-artifacts-"); err != nil {
			t.Fatal(err)
		}
	}
	dir = filepath.Join(dir, "browser-signin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots of every step: %s", dir)
	return dir
}

func TestBrowserSignin(t *testing.T) {
	chromium := findBinary(t, "FORWARDAUTH_E2E_CHROMIUM", "", "chromium", "/usr/bin/chromium")
	shots := artifactsDir(t)
	for _, gw := range gateways {
		if !slices.Contains(browserGateways, gw.name) {
			continue
		}
		t.Run(gw.name, func(t *testing.T) {
			newBrowserRun(t, gw, chromium, filepath.Join(shots, gw.name)).run(t)
		})
	}
}

// browserRun is one gateway's stack and browser.
type browserRun struct {
	st       *stack
	base     string // the gateway, http://127.0.0.1:port
	port     int    // the gateway's port, in every browser URL
	authgear string // the fake Authgear's public host:port
	replica2 string // a second replica sharing Redis, not behind the gateway
	b        *browser
}

func (r *browserRun) origin(host string) string { return fmt.Sprintf("http://%s:%d", host, r.port) }

func newBrowserRun(t *testing.T, gw gateway, chromium, shots string) *browserRun {
	r := &browserRun{port: freePort(t)}
	app, app2 := r.origin(appHostTest), r.origin(app2HostTest)
	r.st = newStackWith(t, stackOptions{
		hosts:        []string{appHostTest, app2HostTest},
		gatewayPort:  r.port,
		htmlUpstream: true,
		setup: func(ag *resolvertest.Server) []string {
			_, port, _ := net.SplitHostPort(strings.TrimPrefix(ag.URL, "http://"))
			r.authgear = "auth.example.test:" + port
			ag.PublicHost = r.authgear
			ag.CookieDomain = "example.test"
			ag.AddPassword(aliceLogin, alicePassword, userAlice.UserID)
			// What a first-time user registers in the portal: one callback
			// and one post-logout URI per app host.
			ag.AddClient(resolvertest.Client{
				ID:                     browserClientID,
				RedirectURIs:           []string{app + signin.CallbackPath, app2 + signin.CallbackPath},
				PostLogoutRedirectURIs: []string{app + "/public/signed-out", app2 + "/public/see-you"},
			})
			return []string{
				"AUTHGEAR_ENDPOINT=http://" + r.authgear,
				"LOGIN_URL=",
				"AUTHGEAR_CLIENT_ID=" + browserClientID,
				"SIGNIN_STATE_SECRET=" + browserSecret,
				"SIGNOUT_REDIRECT_URL=" + app + "/public/signed-out",
				fmt.Sprintf("LOGIN_RETURN_HOSTS=%s:%d,%s:%d", appHostTest, r.port, app2HostTest, r.port),
				// Decisions outlive the test unless purged: only the sign-out
				// can take them back.
				"CACHE_TTL=1h",
				"LOCAL_CACHE_TTL=1h",
			}
		},
	})
	r.replica2 = r.st.startService(t)
	r.base = gw.start(t, r.st)
	r.b = newBrowser(t, chromium, shots)
	return r
}

func (r *browserRun) run(t *testing.T) {
	app, app2 := r.origin(appHostTest), r.origin(app2HostTest)
	ag := r.st.authgear
	deep := app + "/orders/42?tab=items&q=a%20b"

	// 1. A deep link without a session: Authgear's sign-in form.
	resp := r.b.navigate(t, deep)
	loc := r.b.location(t)
	if u, _ := url.Parse(loc); u == nil || u.Host != r.authgear || u.Path != "/login" || resp.Status != 200 {
		t.Fatalf("a deep link without a session ended on %s (%d), want Authgear's form at %s/login", loc, resp.Status, r.authgear)
	}
	r.b.waitVisible(t, "#signin")
	r.b.shot(t, "deep-link-to-authgear-form")

	// 2. Sign in: back on the very deep link, the upstream sees alice.
	e := r.b.submitSignIn(t, deep)
	if e.URI != "/orders/42?tab=items&q=a%20b" || !hasValue(e, "X-Authgear-User-Id", userAlice.UserID) {
		t.Fatalf("after sign-in the upstream saw %s as %q", e.URI, e.Headers["X-Authgear-User-Id"])
	}
	if !strings.Contains(strings.Join(e.Headers["Cookie"], ";"), "session=") {
		t.Errorf("the app host did not receive Authgear's session cookie: %q", e.Headers["Cookie"])
	}
	r.b.shot(t, "signed-in-back-on-the-deep-link")
	if c := ag.OAuthCounts(); c.FormsShown != 1 || c.SignIns != 1 {
		t.Errorf("Authgear counts %+v, want one form, one sign-in", c)
	}

	// 3. The second app: signed in without the form, by the session cookie
	// the browser already sends it (Authgear's cookie domain is the parent).
	deep2 := app2 + "/reports?month=5"
	before := ag.OAuthCounts()
	r.b.navigate(t, deep2)
	if got := r.b.location(t); got != deep2 {
		t.Fatalf("app2 ended on %s, want %s", got, deep2)
	}
	if e := r.b.echo(t); !hasValue(e, "X-Authgear-User-Id", userAlice.UserID) || e.URI != "/reports?month=5" {
		t.Fatalf("app2's upstream saw %s as %q", e.URI, e.Headers["X-Authgear-User-Id"])
	}
	if after := ag.OAuthCounts(); after.FormsShown != before.FormsShown || after.SignIns != before.SignIns {
		t.Errorf("Authgear counts %+v then %+v: want no form, no new sign-in", before, after)
	}
	r.b.shot(t, "app2-signed-in-without-the-form")

	// The session cookie, as a thief would replay it later; both replicas
	// cache its allow (memory and Redis), for an hour.
	session := r.b.cookie(t, app, "session")
	r.expectReplicaAllows(t, session, true)
	calls := ag.Calls()
	r.expectReplicaAllows(t, session, true)
	if ag.Calls() != calls {
		t.Fatalf("the second replica's allow is not cached: %d resolver calls, then %d", calls, ag.Calls())
	}
	if got := doHost(t, r.base, fmt.Sprintf("%s:%d", appHostTest, r.port), "GET", "/api/me", "", "Accept", acceptJSON, "Cookie", "session="+session); got.status != 200 {
		t.Fatalf("the stolen cookie before sign-out: status %d", got.status)
	}

	// 4. Sign out from the app's page: the decisions are purged, Authgear
	// ends the session (same-site: no confirmation) and returns to
	// SIGNOUT_REDIRECT_URL.
	resp = r.b.click(t, "#signout")
	if got := r.b.location(t); got != app+"/public/signed-out" || resp.Status != 200 {
		t.Fatalf("sign-out ended on %s (%d), want %s/public/signed-out", got, resp.Status, app)
	}
	if e := r.b.echo(t); hasValue(e, "X-Authgear-User-Id", userAlice.UserID) {
		t.Errorf("after sign-out the upstream still sees alice")
	}
	if c := ag.OAuthCounts(); c.SignOuts != 1 || c.SignOutConfirms != 0 {
		t.Errorf("Authgear counts %+v, want one sign-out without confirmation", c)
	}
	r.b.shot(t, "signed-out")

	// 5. The next navigation to either app goes to sign-in.
	for i, u := range []string{deep, deep2} {
		r.b.navigate(t, u)
		if got, _ := url.Parse(r.b.location(t)); got == nil || got.Host != r.authgear || got.Path != "/login" {
			t.Errorf("after sign-out %s ended on %s, want the sign-in form", u, got)
		}
		r.b.shot(t, []string{"app-after-sign-out-asks-to-sign-in", "app2-after-sign-out-asks-to-sign-in"}[i])
	}
	// Not from a cached allow: neither replica nor the gateway lets the old
	// cookie in, though its decisions were cached for an hour.
	r.expectReplicaAllows(t, session, false)
	if got := doHost(t, r.base, fmt.Sprintf("%s:%d", appHostTest, r.port), "GET", "/api/me", "", "Accept", acceptJSON, "Cookie", "session="+session); got.status != 401 || r.st.upstream.reached(got.id) {
		t.Errorf("the old cookie after sign-out: status %d through %s, want 401", got.status, r.base)
	}

	// 6. Authgear's error (the user cancels): the service's plain page, with
	// a link back to the deep link, repeating nothing of Authgear's words.
	r.b.navigate(t, deep)
	resp = r.b.click(t, "#cancel")
	r.b.waitVisible(t, "#retry")
	body := r.b.text(t, "body")
	if resp.Status != 403 || !strings.Contains(body, "not completed") || strings.Contains(body, "access_denied") || strings.Contains(body, "cancelled") {
		t.Errorf("error page (%d): %q", resp.Status, body)
	}
	if href := r.b.attr(t, "#retry", "href"); href != deep {
		t.Errorf("try-again link %q, want %s", href, deep)
	}
	r.b.shot(t, "authgear-error-page")
	r.b.click(t, "#retry")
	r.b.waitVisible(t, "#signin")
	r.b.shot(t, "try-again-goes-to-the-form")

	// 7. States the service did not make, or that expired, or that return
	// elsewhere, are refused with the same kind of page.
	fresh := signedState(t, time.Now(), deep)
	p64, m64, _ := strings.Cut(fresh, ".")
	tampered := p64[:len(p64)-3] + "xyz." + m64
	for _, c := range []struct {
		name, state, title, link string
	}{
		{"tampered-state", tampered, "Sign-in link not valid", "/"},
		{"expired-state", signedState(t, time.Now().Add(-time.Hour), deep), "Sign-in took too long", deep},
		{"state-for-a-host-outside-LOGIN_RETURN_HOSTS", signedState(t, time.Now(), r.origin("evil.example.test")+"/steal"), "Sign-in link not valid", "/"},
	} {
		authorizes := ag.OAuthCounts().Authorize
		resp := r.b.navigate(t, app+signin.CallbackPath+"?state="+url.QueryEscape(c.state)+"&x_traceparent=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
		if title := r.b.title(t); resp.Status != 400 || title != c.title || !strings.HasPrefix(r.b.location(t), app+signin.CallbackPath+"?") {
			t.Errorf("%s: status %d, title %q at %s; want 400 %q, not redirected", c.name, resp.Status, title, r.b.location(t), c.title)
		}
		if href := r.b.attr(t, "#retry", "href"); href != c.link {
			t.Errorf("%s: try-again link %q, want %q", c.name, href, c.link)
		}
		if ag.OAuthCounts().Authorize != authorizes {
			t.Errorf("%s: the browser went on to Authgear", c.name)
		}
		r.b.shot(t, c.name+"-refused")
	}

	r.checkOverHTTP(t)
}

// checkOverHTTP checks, through the gateway with a plain client, what the
// browser cannot show: exact statuses and headers, and that the gateway
// passes the service's answers unchanged.
func (r *browserRun) checkOverHTTP(t *testing.T) {
	app := r.origin(appHostTest)
	host := fmt.Sprintf("%s:%d", appHostTest, r.port)
	endSession := func(target string) string {
		return "http://" + r.authgear + "/oauth2/end_session?post_logout_redirect_uri=" + url.QueryEscape(target)
	}

	t.Run("the service's answers reach the client unchanged", func(t *testing.T) {
		good := signedState(t, time.Now(), app+"/x?y=1")
		for _, c := range []struct {
			uri, cookie string
			status      int
			location    string
		}{
			{signin.CallbackPath + "?state=" + good, "session=s", 302, app + "/x?y=1"},
			{signin.CallbackPath + "?state=nope", "session=s", 400, ""},
			{signin.CallbackPath + "?state=" + good, "", 500, ""},
			{signin.SignOutPath, "session=s", 302, endSession(app + "/public/signed-out")},
			{signin.SignOutPath + "?rd=" + url.QueryEscape(r.origin(app2HostTest)+"/public/see-you"), "session=s", 302, endSession(r.origin(app2HostTest) + "/public/see-you")},
			{signin.SignOutPath + "?rd=" + url.QueryEscape("http://evil.example.test/"), "", 302, endSession(app + "/public/signed-out")},
			// (Its Location differs from the service's by the state's expiry:
			// checked below.)
			{signin.SignInPath + "?rd=" + url.QueryEscape(app+"/public/page"), "", 302, ""},
			{signin.SignInPath + "?rd=" + url.QueryEscape("http://evil.example.test/"), "", 400, ""},
		} {
			via := doHost(t, r.base, host, "GET", c.uri, "", "Cookie", c.cookie, "Accept", acceptHTML)
			direct := doHost(t, "http://"+r.st.service, host, "GET", c.uri, "", "Cookie", c.cookie, "Accept", acceptHTML)
			if via.status != c.status || direct.status != c.status {
				t.Errorf("GET %s: status %d through the gateway, %d from the service; want %d", c.uri, via.status, direct.status, c.status)
			}
			if c.location != "" && via.header.Get("Location") != c.location {
				t.Errorf("GET %s: Location %q, want %q", c.uri, via.header.Get("Location"), c.location)
			}
			for _, h := range []string{"Location", "Cache-Control", "Content-Type", "Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy"} {
				if h == "Location" && strings.HasPrefix(c.uri, signin.SignInPath) && via.status == 302 {
					if u, _ := url.Parse(via.header.Get(h)); u == nil || u.Host != r.authgear || u.Path != "/oauth2/authorize" ||
						u.Query().Get("redirect_uri") != app+signin.CallbackPath {
						t.Errorf("GET %s: Location %q, want Authgear's authorize endpoint with this host's callback", c.uri, via.header.Get(h))
					}
					continue
				}
				if !slices.Equal(via.header.Values(h), direct.header.Values(h)) {
					t.Errorf("GET %s: %s %q through the gateway, %q from the service", c.uri, h, via.header.Values(h), direct.header.Values(h))
				}
			}
			if string(via.body) != string(direct.body) {
				t.Errorf("GET %s: body through the gateway differs:\n%s\nfrom the service:\n%s", c.uri, via.body, direct.body)
			}
			if r.st.upstream.reached(via.id) {
				t.Errorf("GET %s reached the application", c.uri)
			}
		}
	})

	t.Run("a browser navigation is sent to Authgear's authorize endpoint, the callback on its own host", func(t *testing.T) {
		for _, h := range []string{appHostTest, app2HostTest} {
			got := doHost(t, r.base, fmt.Sprintf("%s:%d", h, r.port), "GET", "/a/b?c=d", "", "Accept", acceptHTML)
			u, _ := url.Parse(got.header.Get("Location"))
			if got.status != 302 || u == nil || u.Host != r.authgear || u.Path != "/oauth2/authorize" {
				t.Fatalf("%s: status %d, Location %q", h, got.status, got.header.Get("Location"))
			}
			q := u.Query()
			if q.Get("client_id") != browserClientID || q.Get("response_type") != "none" || q.Get("scope") != "openid" ||
				q.Get("redirect_uri") != r.origin(h)+signin.CallbackPath {
				t.Errorf("%s: authorize parameters %v", h, q)
			}
		}
	})

	t.Run("API clients still get 401", func(t *testing.T) {
		got := doHost(t, r.base, host, "GET", "/api/things", "", "Accept", acceptJSON)
		if got.status != 401 || got.header.Get("Location") != "" {
			t.Errorf("status %d, Location %q", got.status, got.header.Get("Location"))
		}
	})

	t.Run("a return host outside LOGIN_RETURN_HOSTS is not redirected to", func(t *testing.T) {
		// The app's name on a port LOGIN_RETURN_HOSTS does not list.
		got := doHost(t, r.base, appHostTest+":1", "GET", "/orders/42", "", "Accept", acceptHTML)
		if got.status != 401 || got.header.Get("Location") != "" || r.st.upstream.reached(got.id) {
			t.Errorf("status %d, Location %q", got.status, got.header.Get("Location"))
		}
	})
}

// expectReplicaAllows asks the second replica about the session cookie as a
// Traefik-style gateway would.
func (r *browserRun) expectReplicaAllows(t *testing.T, session string, allow bool) {
	t.Helper()
	got := doHost(t, "http://"+r.replica2, r.replica2, "GET", "/auth", "",
		"Accept", acceptJSON, "Cookie", "session="+session,
		"X-Forwarded-Method", "GET", "X-Forwarded-Proto", "http",
		"X-Forwarded-Host", fmt.Sprintf("%s:%d", appHostTest, r.port), "X-Forwarded-Uri", "/orders/42")
	if want := map[bool]int{true: 200, false: 401}[allow]; got.status != want {
		t.Fatalf("the second replica answered %d for the session cookie, want %d", got.status, want)
	}
}

// signedState is a state for raw made with the service's secret as if at now.
func signedState(t *testing.T, now time.Time, raw string) string {
	t.Helper()
	s, err := signin.NewSigner([]byte(browserSecret), 15*time.Minute, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(raw)
	state, err := s.Sign(u)
	if err != nil {
		t.Fatal(err)
	}
	return state
}

func hasValue(e echo, header, value string) bool {
	v := e.Headers[header]
	return len(v) == 1 && v[0] == value
}

// --- the browser ------------------------------------------------------------

// browser is one headless Chromium with a fresh profile.
type browser struct {
	ctx   context.Context
	shots string
	n     int
}

// stepTimeout bounds one browser step: a guard against a hang, not a
// measurement.
const stepTimeout = 30 * time.Second

func newBrowser(t *testing.T, bin, shots string) *browser {
	t.Helper()
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	profile, err := os.MkdirTemp("", "forwardauth-e2e-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.Flag("host-resolver-rules", "MAP *.example.test 127.0.0.1"),
		chromedp.WindowSize(1000, 700),
	)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		_ = os.RemoveAll(profile)
	})
	// The first run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	return &browser{ctx: ctx, shots: shots}
}

func (b *browser) step(t *testing.T, what string, f func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := f(ctx); err != nil {
		b.shot(t, "failed-"+strings.ReplaceAll(what, " ", "-"))
		t.Fatalf("browser: %s: %v", what, err)
	}
}

// navigate loads u (following redirects) and returns the final document's
// response.
func (b *browser) navigate(t *testing.T, u string) *network.Response {
	t.Helper()
	var resp *network.Response
	b.step(t, "navigate", func(ctx context.Context) (err error) {
		resp, err = chromedp.Run(ctx, chromedp.NavigateResponse(u))
		if err == nil && resp == nil {
			err = errors.New("no response")
		}
		return err
	})
	return resp
}

// click clicks sel and returns the response of the page that loads.
func (b *browser) click(t *testing.T, sel string) *network.Response {
	t.Helper()
	var resp *network.Response
	b.step(t, "click "+sel, func(ctx context.Context) (err error) {
		resp, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
		if err == nil && resp == nil {
			err = errors.New("no response")
		}
		return err
	})
	return resp
}

// submitSignIn fills Authgear's form as alice and returns what the upstream
// saw on the page it ends on, which must be want.
func (b *browser) submitSignIn(t *testing.T, want string) echo {
	t.Helper()
	b.step(t, "fill the sign-in form", func(ctx context.Context) error {
		return chromedp.Do(ctx,
			chromedp.SendKeys(chromedp.CSS("#login"), aliceLogin, chromedp.NodeVisible),
			chromedp.SendKeys(chromedp.CSS("#password"), alicePassword, chromedp.NodeVisible),
		)
	})
	b.shot(t, "sign-in-form-filled")
	if resp := b.click(t, "#sign-in"); resp.Status != 200 {
		t.Fatalf("after sign-in: status %d at %s", resp.Status, b.location(t))
	}
	if got := b.location(t); got != want {
		t.Fatalf("after sign-in the browser is at %s, want the deep link %s", got, want)
	}
	return b.echo(t)
}

func (b *browser) location(t *testing.T) string {
	t.Helper()
	var loc string
	b.step(t, "location", func(ctx context.Context) (err error) {
		loc, err = chromedp.Run(ctx, chromedp.Location())
		return err
	})
	return loc
}

func (b *browser) title(t *testing.T) string {
	t.Helper()
	var title string
	b.step(t, "title", func(ctx context.Context) (err error) {
		title, err = chromedp.Run(ctx, chromedp.Title())
		return err
	})
	return title
}

func (b *browser) waitVisible(t *testing.T, sel string) {
	t.Helper()
	b.step(t, "wait for "+sel, func(ctx context.Context) error {
		return chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sel)))
	})
}

func (b *browser) text(t *testing.T, sel string) string {
	t.Helper()
	var s string
	b.step(t, "text of "+sel, func(ctx context.Context) (err error) {
		s, err = chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
		return err
	})
	return s
}

func (b *browser) attr(t *testing.T, sel, name string) string {
	t.Helper()
	var v chromedp.AttributeResult
	b.step(t, "attribute "+name+" of "+sel, func(ctx context.Context) (err error) {
		v, err = chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
		return err
	})
	return v.Value
}

// echo is what the upstream saw, from its page.
func (b *browser) echo(t *testing.T) echo {
	t.Helper()
	var e echo
	if err := json.Unmarshal([]byte(b.text(t, "#echo")), &e); err != nil {
		t.Fatalf("the page at %s is not the upstream's: %v", b.location(t), err)
	}
	return e
}

// cookie is the value of the browser's cookie name for u ("" when none).
func (b *browser) cookie(t *testing.T, u, name string) string {
	t.Helper()
	var cookies []*network.Cookie
	b.step(t, "cookies", func(ctx context.Context) error {
		res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{u}})
		cookies = res.Cookies
		return err
	})
	for _, c := range cookies {
		if c.Name == name {
			if !c.HTTPOnly || strings.TrimPrefix(c.Domain, ".") != "example.test" {
				t.Errorf("cookie %s: domain %q, HttpOnly %v; want Authgear's cookie on example.test", name, c.Domain, c.HTTPOnly)
			}
			return c.Value
		}
	}
	t.Fatalf("no %s cookie for %s", name, u)
	return ""
}

// shot saves a screenshot of the page as NN-name.png.
func (b *browser) shot(t *testing.T, name string) {
	t.Helper()
	b.n++
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(b.shots, fmt.Sprintf("%02d-%s.png", b.n, name)), png, 0o644); err != nil {
		t.Logf("screenshot %s: %v", name, err)
	}
}
