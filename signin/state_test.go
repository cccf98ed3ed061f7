package signin

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestSigner(t testing.TB, c *clock) *Signer {
	t.Helper()
	s, err := NewSigner(testSecret, 10*time.Minute, c.now)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestRoundTrip(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	s := newTestSigner(t, c)
	for _, raw := range []string{
		"https://app.example.com/orders/42?tab=items",
		"http://app.example.test:8443/a%20b/%E2%9C%93?x=1&x=2&y=a%2Fb",
		"https://app.example.com",
		"https://[::1]:8080/",
	} {
		state, err := s.Sign(mustURL(t, raw))
		if err != nil {
			t.Fatalf("Sign(%s): %v", raw, err)
		}
		if strings.ContainsAny(state, "+/=?&# ") {
			t.Errorf("state %q is not URL-safe", state)
		}
		got, err := s.Verify(state)
		if err != nil {
			t.Fatalf("Verify(Sign(%s)): %v", raw, err)
		}
		if got.ReturnURL.String() != raw {
			t.Errorf("round trip of %s gave %s", raw, got.ReturnURL)
		}
		if want := c.t.Add(10 * time.Minute); !got.Expires.Equal(want) {
			t.Errorf("expires %s, want %s", got.Expires, want)
		}
	}
}

func TestExpiry(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	s := newTestSigner(t, c)
	state, err := s.Sign(mustURL(t, "https://app.example.com/deep?x=1"))
	if err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(10*time.Minute - time.Second)
	if _, err := s.Verify(state); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	c.t = c.t.Add(time.Second)
	st, err := s.Verify(state)
	if !errors.Is(err, ErrExpired) {
		t.Fatalf("at expiry: %v, want ErrExpired", err)
	}
	// Authentic though expired: the URL is there for a try-again link.
	if st.ReturnURL == nil || st.ReturnURL.String() != "https://app.example.com/deep?x=1" {
		t.Errorf("expired state's URL = %v", st.ReturnURL)
	}
}

func TestTampering(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	s := newTestSigner(t, c)
	state, err := s.Sign(mustURL(t, "https://app.example.com/orders/42"))
	if err != nil {
		t.Fatal(err)
	}
	p64, m64, _ := strings.Cut(state, ".")

	// Another URL under the original signature.
	forged := b64.EncodeToString(append(mustDecode(t, p64)[:headLen:headLen], "https://evil.example/"...)) + "." + m64
	// A later expiry under the original signature.
	later := mustDecode(t, p64)
	later[8]++
	// A state signed with another secret.
	other, _ := NewSigner([]byte("another-secret-another-secret-another"), 10*time.Minute, c.now)
	otherState, _ := other.Sign(mustURL(t, "https://app.example.com/orders/42"))

	for name, tc := range map[string]struct {
		state string
		want  error
	}{
		"URL swapped":           {forged, ErrSignature},
		"expiry moved":          {b64.EncodeToString(later) + "." + m64, ErrSignature},
		"MAC flipped":           {p64 + "." + flip(m64), ErrSignature},
		"other secret":          {otherState, ErrSignature},
		"MAC truncated":         {p64 + "." + m64[:len(m64)-2], ErrMalformed},
		"no MAC":                {p64, ErrMalformed},
		"empty":                 {"", ErrMalformed},
		"two dots":              {state + ".x", ErrMalformed},
		"padding":               {p64 + "=." + m64, ErrMalformed},
		"standard base64":       {strings.NewReplacer("-", "+", "_", "/").Replace(p64) + "x." + m64, ErrMalformed},
		"oversized":             {strings.Repeat("A", maxState+1), ErrMalformed},
		"other version":         {b64.EncodeToString(append([]byte{2}, mustDecode(t, p64)[1:]...)) + "." + m64, ErrMalformed},
		"short payload":         {b64.EncodeToString([]byte{1, 0, 0}) + "." + m64, ErrMalformed},
		"whitespace":            {" " + state, ErrMalformed},
		"signed but not a URL*": {signRaw(s, "javascript:alert(1)"), ErrMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			st, err := s.Verify(tc.state)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify: %v, want %v", err, tc.want)
			}
			if st.ReturnURL != nil {
				t.Errorf("a refused state gave URL %s", st.ReturnURL)
			}
		})
	}
}

// signRaw signs any payload URL, bypassing Sign's checks, to show Verify
// checks the URL again even under a good signature.
func signRaw(s *Signer, raw string) string {
	payload := make([]byte, headLen)
	payload[0] = version
	payload[8] = 0xff // far future
	payload[4] = 0x7f
	payload = append(payload, raw...)
	return b64.EncodeToString(payload) + "." + b64.EncodeToString(s.mac(payload))
}

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := b64.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func flip(s string) string {
	b := []byte(s)
	if b[0] == 'A' {
		b[0] = 'B'
	} else {
		b[0] = 'A'
	}
	return string(b)
}

func TestSignRefuses(t *testing.T) {
	s := newTestSigner(t, &clock{time.Unix(1_800_000_000, 0)})
	for _, raw := range []string{
		"/relative", "javascript:alert(1)", "ftp://app.example.com/", "https://user:pass@app.example.com/",
		"https:opaque", "https://app.example.com/" + strings.Repeat("a", MaxReturnURL),
	} {
		if st, err := s.Sign(mustURL(t, raw)); err == nil {
			t.Errorf("Sign(%q) = %q, want an error", raw, st)
		}
	}
	if _, err := s.Sign(nil); err == nil {
		t.Error("Sign(nil) succeeded")
	}
}

func TestNewSignerRefuses(t *testing.T) {
	if _, err := NewSigner([]byte("short"), time.Minute, nil); err == nil {
		t.Error("a 5-character secret was accepted")
	}
	if _, err := NewSigner(testSecret, 0, nil); err == nil {
		t.Error("a zero lifetime was accepted")
	}
}

func TestClean(t *testing.T) {
	long := strings.Repeat("q", MaxReturnURL)
	for _, tc := range []struct{ in, want string }{
		{"https://app.example.com/a?b=c#frag", "https://app.example.com/a?b=c"},
		{"https://u:p@app.example.com/a", "https://app.example.com/a"},
		{"https://app.example.com:443/a", "https://app.example.com/a"},
		{"http://app.example.com:80/a", "http://app.example.com/a"},
		{"http://app.example.com:443/a", "http://app.example.com:443/a"},
		{"https://[::1]:443/a", "https://[::1]/a"},
		{"https://app.example.com/page?x=" + long, "https://app.example.com/page"},
		{"https://app.example.com/" + long + "?x=1", "https://app.example.com/"},
	} {
		got := Clean(mustURL(t, tc.in)).String()
		if got != tc.want {
			t.Errorf("Clean(%.60s...) = %.80s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestAuthgearURLs(t *testing.T) {
	ep := mustURL(t, "https://auth.example.com")
	got := AuthorizeURL(ep, "client 1", "https://app.example.com/_forwardauth/callback", "S.T")
	want := "https://auth.example.com/oauth2/authorize?client_id=client+1&redirect_uri=https%3A%2F%2Fapp.example.com%2F_forwardauth%2Fcallback&response_type=none&scope=openid&state=S.T"
	if got != want {
		t.Errorf("AuthorizeURL = %s\nwant %s", got, want)
	}
	got = EndSessionURL(ep, "https://app.example.com/bye?x=1")
	want = "https://auth.example.com/oauth2/end_session?post_logout_redirect_uri=https%3A%2F%2Fapp.example.com%2Fbye%3Fx%3D1"
	if got != want {
		t.Errorf("EndSessionURL = %s\nwant %s", got, want)
	}
	if got := CallbackURL(mustURL(t, "http://app.example.test:8080/deep/link?x=1")); got != "http://app.example.test:8080/_forwardauth/callback" {
		t.Errorf("CallbackURL = %s", got)
	}
}
