package cache

import (
	"slices"
	"testing"
	"time"

	"github.com/authgear/authgear-forwardauth/resolver"
)

func TestWireRoundTrip(t *testing.T) {
	exp := time.UnixMilli(time.Now().Add(time.Minute).UnixMilli())
	for _, e := range []Entry{
		{Decision: resolver.Deny(), Expires: exp},
		{Decision: allowFor("u1", "admin", "editor"), Expires: exp, StaleUntil: exp.Add(time.Hour)},
		{Decision: resolver.Allow(resolver.Identity{UserID: "anon", Anonymous: true, CanReauthenticate: true}, time.Time{}), Expires: exp},
	} {
		got, err := decodeEntry(string(encodeEntry(e)))
		if err != nil {
			t.Fatal(err)
		}
		if !got.Expires.Equal(e.Expires) || !got.StaleUntil.Equal(e.StaleUntil) || got.Decision.Allow != e.Decision.Allow {
			t.Fatalf("got %+v, want %+v", got, e)
		}
		a, b := got.Decision.Identity, e.Decision.Identity
		if a.UserID != b.UserID || a.Anonymous != b.Anonymous || a.Verified != b.Verified || a.CanReauthenticate != b.CanReauthenticate ||
			!slices.Equal(a.Roles, b.Roles) || !slices.Equal(a.AMR, b.AMR) || a.AuthenticatedAt != b.AuthenticatedAt {
			t.Fatalf("identity %+v, want %+v", a, b)
		}
	}
}

// FuzzDecodeEntry: whatever Redis holds under our keys, decoding never panics
// and a malformed value is an error, not a decision.
func FuzzDecodeEntry(f *testing.F) {
	f.Add(string(encodeEntry(Entry{Decision: allowFor("u1", "r"), Expires: time.Now()})))
	f.Add(string(encodeEntry(Entry{Decision: resolver.Deny(), Expires: time.Now()})))
	f.Add(`{"a":true,"u":"u1"}`)
	f.Add("\x01\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff")
	f.Fuzz(func(t *testing.T, s string) {
		e, err := decodeEntry(s)
		if err == nil && e.Decision == nil {
			t.Fatal("no error and no decision")
		}
		if err == nil && e.Decision.Allow {
			if got, err := decodeEntry(string(encodeEntry(e))); err != nil || got.Decision.Identity.UserID != e.Decision.Identity.UserID {
				t.Fatalf("re-encoding a decoded entry: %v", err)
			}
		}
	})
}
