package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/authgear/authgear-forwardauth/assertion"
	"github.com/authgear/authgear-forwardauth/resolver"
	"github.com/authgear/authgear-forwardauth/resolver/resolvertest"
)

func genkeyOutput(t *testing.T, args ...string) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), append([]string{"forwardauth", "genkey"}, args...), env(nil), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGenkey(t *testing.T) {
	first := genkeyOutput(t)
	keys, err := assertion.ParseKeys(first)
	if err != nil || keys.Algorithm() != "ES256" {
		t.Fatalf("genkey's set: %v, %v", keys, err)
	}
	path := writeTemp(t, "keys.json", string(first))
	next, err := assertion.ParseKeys(genkeyOutput(t, path))
	if err != nil {
		t.Fatal(err)
	}
	var set struct{ Keys []map[string]any }
	_ = json.Unmarshal(next.PublicJWKS(), &set)
	if next.KeyID() != keys.KeyID() || len(set.Keys) != 2 {
		t.Errorf("rotation: signing %s (want %s), %d keys", next.KeyID(), keys.KeyID(), len(set.Keys))
	}
	for _, args := range [][]string{{"/nonexistent.json"}, {writeTemp(t, "bad.json", `{"keys":[]}`)}, {"a", "b"}} {
		if err := run(context.Background(), append([]string{"forwardauth", "genkey"}, args...), env(nil), io.Discard, io.Discard); err == nil {
			t.Errorf("genkey %v: no error", args)
		}
	}
}

// TestAssertionStartupErrors: a bad key file stops start-up with one line
// naming ASSERTION_KEYS_FILE.
func TestAssertionStartupErrors(t *testing.T) {
	good := string(genkeyOutput(t))
	var one struct{ Keys []map[string]any }
	if err := json.Unmarshal([]byte(good), &one); err != nil {
		t.Fatal(err)
	}
	public := map[string]any{}
	for k, v := range one.Keys[0] {
		if k != "d" {
			public[k] = v
		}
	}
	js := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	for _, tc := range []struct {
		name, file, want string
	}{
		{"missing file", "", "no such file"},
		{"no private key", js(map[string]any{"keys": []any{public}}), "no private part"},
		{"unsupported alg", `{"keys":[{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA","alg":"HS256"}]}`, "unsupported"},
		{"duplicate kid", js(map[string]any{"keys": []any{one.Keys[0], public}}), "same kid"},
		{"not JSON", "hello", "not a JWK Set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "missing.json")
			if tc.file != "" {
				path = writeTemp(t, "keys.json", tc.file)
			}
			err := run(context.Background(), []string{"forwardauth"}, env(map[string]string{
				"AUTHGEAR_ENDPOINT": "https://p.example", "ASSERTION_KEYS_FILE": path,
			}), io.Discard, io.Discard)
			if err == nil || !strings.HasPrefix(err.Error(), "ASSERTION_KEYS_FILE=") || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q: want one line naming ASSERTION_KEYS_FILE and %q", err, tc.want)
			}
			if d, _ := one.Keys[0]["d"].(string); strings.Contains(err.Error(), d) {
				t.Errorf("the error quotes the private key")
			}
		})
	}
	for _, ttl := range []string{"5s", "2h", "soon"} {
		err := run(context.Background(), []string{"forwardauth"}, env(map[string]string{"AUTHGEAR_ENDPOINT": "https://p.example", "ASSERTION_TTL": ttl}), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "ASSERTION_TTL") {
			t.Errorf("ASSERTION_TTL=%s: %v", ttl, err)
		}
	}
}

// TestServeWithAssertions runs the service as a user would, with a key file
// from genkey: an allow through a trusted gateway carries a token that
// verifies against /.well-known/jwks.json; a purge of the user gives the next
// request a new one.
func TestServeWithAssertions(t *testing.T) {
	ag := resolvertest.NewServer("project.example")
	defer ag.Close()
	ag.AddUser(resolver.Identity{UserID: "u-1", Roles: []string{"admin"}, Verified: true})
	tok := resolvertest.Token("u1")
	ag.AddSession(resolvertest.Bearer, tok, "u-1")
	const admin = "admin-token-0123456789"
	base := startService(t, map[string]string{
		"AUTHGEAR_ENDPOINT":     "https://project.example",
		"AUTHGEAR_RESOLVER_URL": ag.ResolverURL().String(),
		"ASSERTION_KEYS_FILE":   writeTemp(t, "keys.json", string(genkeyOutput(t))),
		"ASSERTION_TTL":         "2m",
		"ADMIN_TOKEN":           admin,
	})
	get := func() string {
		t.Helper()
		req, _ := http.NewRequest("GET", base+"/auth", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("X-Forwarded-Host", "app.example.com")
		req.Header.Set("X-Forwarded-Uri", "/")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		return resp.Header.Get("X-Authgear-Jwt-Assertion")
	}
	first := get()
	resp, err := http.Get(base + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	err = json.NewDecoder(resp.Body).Decode(&set)
	resp.Body.Close()
	if err != nil || resp.Header.Get("Cache-Control") == "" {
		t.Fatalf("JWKS: %v %v", err, resp.Header)
	}
	parsed, err := josejwt.ParseSigned(first, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("assertion %q: %v", first, err)
	}
	var claims josejwt.Claims
	if err := parsed.Claims(set.Keys[0].Key, &claims); err != nil {
		t.Fatal(err)
	}
	if err := claims.Validate(josejwt.Expected{Issuer: "authgear-forwardauth", AnyAudience: josejwt.Audience{"app.example.com"}, Subject: "u-1", Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if d := claims.Expiry.Time().Sub(claims.IssuedAt.Time()); d != 2*time.Minute {
		t.Errorf("lifetime %s, want ASSERTION_TTL", d)
	}
	if get() != first {
		t.Error("a cache hit signed again")
	}
	req, _ := http.NewRequest("POST", base+"/purge", strings.NewReader(`{"user_id":"u-1"}`))
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("purge: %d", resp.StatusCode)
	}
	if get() == first {
		t.Error("the purged user's token was served again")
	}
}
