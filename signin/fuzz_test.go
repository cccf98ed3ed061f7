package signin

import (
	"errors"
	"net/url"
	"testing"
	"time"
)

// FuzzState: whatever a browser brings back as state, Verify never panics
// and yields a URL only for a state Sign made; whatever URL Sign accepts
// comes back unchanged, and any change to its state is refused.
func FuzzState(f *testing.F) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	s := newTestSigner(f, c)
	good, _ := s.Sign(mustURL(f, "https://app.example.com/orders/42?tab=items"))
	for _, seed := range []struct {
		raw   string
		state string
		pos   uint16
	}{
		{"https://app.example.com/orders/42?tab=items", good, 0},
		{"http://app.example.test:8080/a%20b?x=1", good + "x", 5},
		{"https://[::1]/", "", 1},
		{"javascript:alert(1)", "AQ.AA", 2},
		{"https://user@app.example.com/", "..", 3},
	} {
		f.Add(seed.raw, seed.state, seed.pos)
	}
	f.Fuzz(func(t *testing.T, raw, state string, pos uint16) {
		// Arbitrary input never verifies as anything but a signed state.
		if st, err := s.Verify(state); err == nil || errors.Is(err, ErrExpired) {
			if state != good && !signedBy(s, state) {
				t.Fatalf("Verify accepted %q (URL %v) that Sign never made", state, st.ReturnURL)
			}
		} else if st.ReturnURL != nil {
			t.Fatalf("Verify refused %q (%v) yet returned URL %s", state, err, st.ReturnURL)
		}

		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		signed, err := s.Sign(u)
		if err != nil {
			return
		}
		st, err := s.Verify(signed)
		if err != nil {
			t.Fatalf("Verify(Sign(%q)): %v", raw, err)
		}
		if st.ReturnURL.String() != u.String() {
			t.Fatalf("round trip of %q: %q, want %q", raw, st.ReturnURL, u)
		}
		// Flip one byte: refused, whichever byte it is.
		b := []byte(signed)
		i := int(pos) % len(b)
		b[i] ^= 1 << (pos % 7)
		if st, err := s.Verify(string(b)); err == nil || errors.Is(err, ErrExpired) {
			if string(b) != signed {
				t.Fatalf("a changed state %q verified (URL %s)", b, st.ReturnURL)
			}
		}
		// Expired once its time has passed.
		saved := c.t
		c.t = st.Expires
		if _, err := s.Verify(signed); !errors.Is(err, ErrExpired) {
			t.Fatalf("at expiry: %v, want ErrExpired", err)
		}
		c.t = saved
	})
}

// signedBy reports whether state's MAC is s's MAC of its payload, i.e. the
// fuzzer found a state equal to one Sign would make (not a forgery).
func signedBy(s *Signer, state string) bool {
	for i := 0; i < len(state); i++ {
		if state[i] == '.' {
			p, err1 := b64.DecodeString(state[:i])
			m, err2 := b64.DecodeString(state[i+1:])
			return err1 == nil && err2 == nil && string(m) == string(s.mac(p)) && p[0] == version
		}
	}
	return false
}
