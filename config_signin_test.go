package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func signinEnv(kv map[string]string) func(string) string {
	base := map[string]string{
		"AUTHGEAR_ENDPOINT":    "https://auth.example.com",
		"AUTHGEAR_CLIENT_ID":   "client-1",
		"SIGNIN_STATE_SECRET":  strings.Repeat("s", 32),
		"SIGNOUT_REDIRECT_URL": "https://www.example.com/",
		"LOGIN_RETURN_HOSTS":   "app.example.com",
	}
	for k, v := range kv {
		if v == "-" {
			delete(base, k)
		} else {
			base[k] = v
		}
	}
	return env(base)
}

func TestSigninConfigErrorsNameEveryPiece(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"everything missing", map[string]string{"SIGNIN_STATE_SECRET": "-", "SIGNOUT_REDIRECT_URL": "-", "LOGIN_RETURN_HOSTS": "-"},
			[]string{"SIGNIN_STATE_SECRET is required", "SIGNOUT_REDIRECT_URL is required", "LOGIN_RETURN_HOSTS is required"}},
		{"short secret and a relative sign-out URL", map[string]string{"SIGNIN_STATE_SECRET": "too-short", "SIGNOUT_REDIRECT_URL": "/bye"},
			[]string{"SIGNIN_STATE_SECRET: must be at least 32", "SIGNOUT_REDIRECT_URL=\"/bye\""}},
		{"a state secret without a client id", map[string]string{"AUTHGEAR_CLIENT_ID": "-", "SIGNOUT_REDIRECT_URL": "-"},
			[]string{"SIGNIN_STATE_SECRET is set but AUTHGEAR_CLIENT_ID is not"}},
		{"all three without a client id", map[string]string{"AUTHGEAR_CLIENT_ID": "-", "SIGNIN_CALLBACK_URL": "https://app.example.com/_forwardauth/callback"},
			[]string{"SIGNIN_STATE_SECRET is set", "SIGNOUT_REDIRECT_URL is set", "SIGNIN_CALLBACK_URL is set"}},
		{"callback elsewhere than /_forwardauth/callback", map[string]string{"SIGNIN_CALLBACK_URL": "https://app.example.com/callback"},
			[]string{"SIGNIN_CALLBACK_URL=\"https://app.example.com/callback\": must be https://<host>/_forwardauth/callback"}},
		{"callback with a query", map[string]string{"SIGNIN_CALLBACK_URL": "https://app.example.com/_forwardauth/callback?x=1"},
			[]string{"SIGNIN_CALLBACK_URL"}},
		{"sign-out URL with user info", map[string]string{"SIGNOUT_REDIRECT_URL": "https://u:p@www.example.com/"},
			[]string{"SIGNOUT_REDIRECT_URL=\"https://u:p@www.example.com/\": must not carry user info"}},
		{"state lifetime of hours", map[string]string{"SIGNIN_STATE_TTL": "3h"}, []string{"SIGNIN_STATE_TTL=3h0m0s: must be between 1m and 1h"}},
		{"state lifetime of seconds", map[string]string{"SIGNIN_STATE_TTL": "30s"}, []string{"SIGNIN_STATE_TTL"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), []string{"forwardauth"}, signinEnv(tt.env), &bytes.Buffer{}, &bytes.Buffer{})
			if err == nil {
				t.Fatalf("started; want an error naming %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is not one line", err)
			}
			if strings.Contains(err.Error(), strings.Repeat("s", 32)) {
				t.Errorf("error %q shows the secret", err)
			}
		})
	}
}

func TestSigninConfigAccepted(t *testing.T) {
	for name, kv := range map[string]map[string]string{
		"per-host callbacks": {},
		"one callback":       {"SIGNIN_CALLBACK_URL": "https://app.example.com/_forwardauth/callback", "SIGNIN_STATE_TTL": "5m"},
		"hosts with ports":   {"LOGIN_RETURN_HOSTS": "app.example.test:8443,*.example.test:8443"},
		"a page of its own":  {"LOGIN_URL": "https://www.example.com/welcome"},
	} {
		c, err := loadConfig(signinEnv(kv))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		s := c.signin
		if s == nil || s.ClientID != "client-1" || s.Endpoint.String() != "https://auth.example.com" ||
			s.SignOutRedirect.String() != "https://www.example.com/" || s.State == nil {
			t.Fatalf("%s: sign-in config %+v", name, s)
		}
		if got := kv["SIGNIN_CALLBACK_URL"]; got != "" && (s.CallbackURL == nil || s.CallbackURL.String() != got) {
			t.Errorf("%s: callback %v, want %s", name, s.CallbackURL, got)
		}
	}
	c, err := loadConfig(env(map[string]string{"AUTHGEAR_ENDPOINT": "https://auth.example.com"}))
	if err != nil || c.signin != nil {
		t.Errorf("without AUTHGEAR_CLIENT_ID: sign-in %+v, error %v; want off", c.signin, err)
	}
}
