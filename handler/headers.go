package handler

import "net/http"

// requestHeaders are the headers /auth reads, each as the request carries it
// (nil when absent). readHeaders finds them in the one pass over the header
// names that the identity-header check makes anyway, instead of a map
// lookup (a hash of the name) for each.
type requestHeaders struct {
	authorization, cookie                                            []string
	accessControlRequestMethod, host                                 []string
	xOriginalMethod, xOriginalURI, xOriginalURL                      []string
	xForwardedMethod, xForwardedURI, xForwardedHost, xForwardedProto []string
	// identityHeader: a header an application could read as one of ours
	// (identityHeaderName).
	identityHeader bool
}

func readHeaders(h http.Header) (v requestHeaders) {
	for name, values := range h {
		if name == "" {
			continue
		}
		// Most names are decided by their first byte.
		switch c := name[0] | 0x20; c {
		case 'a':
			switch name {
			case "Authorization":
				v.authorization = values
			case "Access-Control-Request-Method":
				v.accessControlRequestMethod = values
			}
		case 'c':
			if name == "Cookie" {
				v.cookie = values
			}
		case 'h':
			if name == "Host" {
				v.host = values
			}
		case 'x':
			switch name {
			case "X-Original-Method":
				v.xOriginalMethod = values
			case "X-Original-Uri":
				v.xOriginalURI = values
			case "X-Original-Url":
				v.xOriginalURL = values
			case "X-Forwarded-Method":
				v.xForwardedMethod = values
			case "X-Forwarded-Uri":
				v.xForwardedURI = values
			case "X-Forwarded-Host":
				v.xForwardedHost = values
			case "X-Forwarded-Proto":
				v.xForwardedProto = values
			default:
				if identityHeaderName(name) {
					v.identityHeader = true
				}
			}
		default:
			// A name starting with a separator may still fold into ours.
			if (c < 'a' || c > 'z') && identityHeaderName(name) {
				v.identityHeader = true
			}
		}
	}
	return v
}
