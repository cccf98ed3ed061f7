package main

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/authgear/authgear-forwardauth/handler"
	"github.com/authgear/authgear-forwardauth/signin"
)

// validateSignin checks the built-in browser sign-in's variables together
// and names every missing or wrong one in a single error, so that one
// restart is enough to fix them all.
func (c *config) validateSignin() error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if c.AuthgearClientID == "" {
		for _, v := range []struct{ name, value string }{
			{"SIGNIN_STATE_SECRET", c.SigninStateSecret},
			{"SIGNOUT_REDIRECT_URL", c.SignoutRedirectURL},
			{"SIGNIN_CALLBACK_URL", c.SigninCallbackURL},
		} {
			if v.value != "" {
				bad("%s is set but AUTHGEAR_CLIENT_ID is not: the built-in sign-in needs the client id of a first-party client of the project", v.name)
			}
		}
		return joinErrors(errs)
	}

	switch {
	case c.SigninStateSecret == "":
		bad("SIGNIN_STATE_SECRET is required with AUTHGEAR_CLIENT_ID: 32+ characters, the same on every replica (e.g. openssl rand -hex 32)")
	case len(c.SigninStateSecret) < signin.MinSecretLen:
		bad("SIGNIN_STATE_SECRET: must be at least %d characters (e.g. openssl rand -hex 32)", signin.MinSecretLen)
	}
	var signOut *url.URL
	if c.SignoutRedirectURL == "" {
		bad("SIGNOUT_REDIRECT_URL is required with AUTHGEAR_CLIENT_ID: where Authgear sends the browser after sign-out, registered among the client's post-logout redirect URIs")
	} else if u, err := absoluteURL(c.SignoutRedirectURL); err != nil {
		bad("SIGNOUT_REDIRECT_URL=%q: %v", c.SignoutRedirectURL, err)
	} else {
		signOut = u
	}
	var callback *url.URL
	if c.SigninCallbackURL != "" {
		u, err := absoluteURL(c.SigninCallbackURL)
		switch {
		case err != nil:
			bad("SIGNIN_CALLBACK_URL=%q: %v", c.SigninCallbackURL, err)
		case u.Path != signin.CallbackPath || u.RawQuery != "" || u.Fragment != "":
			bad("SIGNIN_CALLBACK_URL=%q: must be https://<host>%s, on a host whose gateway sends %s to this service", c.SigninCallbackURL, signin.CallbackPath, signin.PathPrefix)
		default:
			callback = u
		}
	}
	if c.returnHosts = splitList(c.LoginReturnHosts); len(c.returnHosts) == 0 {
		bad("LOGIN_RETURN_HOSTS is required with AUTHGEAR_CLIENT_ID: the app hosts a sign-in may return to (host, host:port or *.example.com)")
	}
	if c.SigninStateTTL < time.Minute || c.SigninStateTTL > time.Hour {
		bad("SIGNIN_STATE_TTL=%s: must be between 1m and 1h", c.SigninStateTTL)
	}
	if len(errs) > 0 {
		return joinErrors(errs)
	}
	state, err := signin.NewSigner([]byte(c.SigninStateSecret), c.SigninStateTTL, nil)
	if err != nil {
		return fmt.Errorf("SIGNIN_STATE_SECRET: %v", err)
	}
	c.signin = &handler.SigninConfig{
		Endpoint:        c.endpoint,
		ClientID:        c.AuthgearClientID,
		State:           state,
		CallbackURL:     callback,
		SignOutRedirect: signOut,
	}
	return nil
}

// joinErrors keeps start-up errors on one line, every problem named.
func joinErrors(errs []string) error {
	if len(errs) == 0 {
		return nil
	}
	return errors.New(strings.Join(errs, "; "))
}

// absoluteURL parses an absolute http(s) URL without user info.
func absoluteURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return nil, err
	case (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Opaque != "":
		return nil, errors.New("must be an absolute http(s) URL")
	case u.User != nil:
		return nil, errors.New("must not carry user info")
	}
	return u, nil
}
