package handler

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// lookedUp is requestHeaders the slow way: a map lookup per header and a
// check of every name.
func lookedUp(h http.Header) requestHeaders {
	v := requestHeaders{
		authorization:              h["Authorization"],
		cookie:                     h["Cookie"],
		accessControlRequestMethod: h["Access-Control-Request-Method"],
		host:                       h["Host"],
		xOriginalMethod:            h["X-Original-Method"],
		xOriginalURI:               h["X-Original-Uri"],
		xOriginalURL:               h["X-Original-Url"],
		xForwardedMethod:           h["X-Forwarded-Method"],
		xForwardedURI:              h["X-Forwarded-Uri"],
		xForwardedHost:             h["X-Forwarded-Host"],
		xForwardedProto:            h["X-Forwarded-Proto"],
	}
	for name := range h {
		if identityHeaderName(name) {
			v.identityHeader = true
		}
	}
	return v
}

func TestReadHeadersFindsWhatLookupsFind(t *testing.T) {
	cases := []http.Header{
		{},
		{"": {"x"}},
		benchRequestFromGateway().Header,
		{"Authorization": {"Bearer a", "Bearer b"}, "Cookie": {"a=1", "b=2"}, "Host": {"h"}},
		{"X-Original-Uri": {""}, "X-Original-Url": {"https://a/"}, "X-Original-Method": {"GET"}, "X-Forwarded-Proto": {"http"}},
		{"X-Authgear-User-Id": {"u"}, "X-Forwarded-Uri": {"/"}},
		{"_x_authgear_user_id": {"u"}},
		{"x-forwarded-uri": {"/not-canonical"}, "authorization": {"Bearer x"}}, // as a map lookup: not found
		{"X-Forwarded-Uriz": {"/"}, "Authorizations": {"x"}, "Cookies": {"x"}, "Hosts": {"x"}},
		{"Access-Control-Request-Method": {"PUT"}, "Origin": {"https://a"}},
	}
	for _, h := range cases {
		if got, want := readHeaders(h), lookedUp(h); !reflect.DeepEqual(got, want) {
			t.Errorf("%v:\n got %+v\nwant %+v", h, got, want)
		}
	}
}

func FuzzReadHeaders(f *testing.F) {
	f.Add("X-Forwarded-Uri\n/a\nAuthorization\nBearer x\nx_authgear_roles\nadmin")
	f.Add("Cookie\na=b\nCookie\nc=d\nHost\nh\nX-Original-Url\nhttps://h/")
	f.Fuzz(func(t *testing.T, s string) {
		lines := strings.Split(s, "\n")
		h := http.Header{}
		for i := 0; i+1 < len(lines); i += 2 {
			h[lines[i]] = append(h[lines[i]], lines[i+1])
		}
		if got, want := readHeaders(h), lookedUp(h); !reflect.DeepEqual(got, want) {
			t.Errorf("%q:\n got %+v\nwant %+v", h, got, want)
		}
	})
}
