package signin

import "net/url"

// The service's own routes, under a prefix each gateway sends to the service
// without the auth check.
const (
	PathPrefix   = "/_forwardauth/"
	CallbackPath = PathPrefix + "callback"
	SignInPath   = PathPrefix + "sign_in"
	SignOutPath  = PathPrefix + "sign_out"
)

// AuthorizeURL is where a browser signs in: Authgear's authorize endpoint
// with response_type=none, which issues no code and no token: the point is
// the session cookie Authgear sets on the parent domain. A first-party
// client gets consent without asking. redirectURI must be registered
// exactly in the client; Authgear appends state (and x_traceparent) to it.
func AuthorizeURL(endpoint *url.URL, clientID, redirectURI, state string) string {
	u := endpoint.JoinPath("/oauth2/authorize")
	u.RawQuery = url.Values{
		"client_id":     {clientID},
		"response_type": {"none"},
		"scope":         {"openid"},
		"redirect_uri":  {redirectURI},
		"state":         {state},
	}.Encode()
	return u.String()
}

// EndSessionURL is where a browser signs out: Authgear ends the IdP session,
// clears its cookie and sends the browser to postLogoutRedirectURI, which
// must be registered exactly among a client's post-logout redirect URIs
// (otherwise Authgear sends it to the client's URI or its settings page).
func EndSessionURL(endpoint *url.URL, postLogoutRedirectURI string) string {
	u := endpoint.JoinPath("/oauth2/end_session")
	u.RawQuery = url.Values{"post_logout_redirect_uri": {postLogoutRedirectURI}}.Encode()
	return u.String()
}

// CallbackURL is the callback on the origin of u: one per app host, each to
// be registered among the client's redirect URIs.
func CallbackURL(u *url.URL) string {
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: CallbackPath}).String()
}
