package handler

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// DefaultTrustedProxies are loopback and the private ranges: where gateways
// usually sit next to this service.
var DefaultTrustedProxies = []string{"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"}

// original is the request the gateway is asking about, as the gateway
// describes it.
type original struct {
	method string
	url    *url.URL // absolute; nil when unknown
	// nginx: X-Original-* headers. nginx turns any answer but 2xx/401/403
	// into a 500, so a login redirect must ride on a 401.
	nginx bool
}

// peerTrustKey holds, in a connection's context, whether its peer may
// describe the original request (ConnContext).
type peerTrustKey struct{}

// ConnContext is for http.Server.ConnContext: it decides once per
// connection whether the peer is one of proxies, so that /auth does not
// parse RemoteAddr on every request of a kept-alive gateway connection.
// proxies must be AuthConfig.TrustedProxies.
func ConnContext(proxies []netip.Prefix) func(context.Context, net.Conn) context.Context {
	return func(ctx context.Context, c net.Conn) context.Context {
		if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			return context.WithValue(ctx, peerTrustKey{}, inProxies(a.AddrPort().Addr(), proxies))
		}
		return ctx
	}
}

// trusted reports whether the peer may describe the original request.
func trusted(r *http.Request, proxies []netip.Prefix) bool {
	if t, ok := r.Context().Value(peerTrustKey{}).(bool); ok {
		return t
	}
	// RemoteAddr is "ip:port" from net/http: one parse (this runs on every
	// /auth); anything else is tried as a bare address.
	var addr netip.Addr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		addr = ap.Addr()
	} else if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if addr, err = netip.ParseAddr(host); err != nil {
			return false
		}
	} else if addr, err = netip.ParseAddr(r.RemoteAddr); err != nil {
		return false
	}
	return inProxies(addr, proxies)
}

func inProxies(addr netip.Addr, proxies []netip.Prefix) bool {
	addr = addr.Unmap()
	for _, p := range proxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// readOriginal reads either convention: nginx's X-Original-Method/-URI/-URL,
// or the X-Forwarded-Method/-Proto/-Host/-Uri of Traefik and Caddy. Only
// call it for a trusted peer. Each gateway sets its own convention but may
// pass the other through from the client, so a request carrying both is
// ambiguous and describes nothing: no preflight pass, no redirect.
func readOriginal(h http.Header) original {
	nginx := h.Get("X-Original-Method") != "" || h.Get("X-Original-Uri") != "" || h.Get("X-Original-Url") != ""
	forwarded := h.Get("X-Forwarded-Method") != "" || h.Get("X-Forwarded-Uri") != ""
	if nginx && forwarded {
		return original{}
	}
	if m := h.Get("X-Original-Method"); nginx {
		o := original{method: m, nginx: true}
		if u, err := url.Parse(h.Get("X-Original-Url")); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
			o.url = u
		} else if uri := h.Get("X-Original-Uri"); uri != "" {
			o.url = absolute(h.Get("X-Forwarded-Proto"), firstNonEmpty(h.Get("X-Forwarded-Host"), h.Get("Host")), uri)
		}
		return o
	}
	o := original{method: h.Get("X-Forwarded-Method")}
	if uri := h.Get("X-Forwarded-Uri"); uri != "" {
		o.url = absolute(h.Get("X-Forwarded-Proto"), h.Get("X-Forwarded-Host"), uri)
	}
	return o
}

// originalQuery is the query of the original request as a trusted
// X-Forwarded-Uri gives it ("" when none).
func originalQuery(xForwardedURI string) string {
	if _, q, ok := strings.Cut(xForwardedURI, "?"); ok {
		return q
	}
	return ""
}

func absolute(proto, host, uri string) *url.URL {
	if host == "" || !strings.HasPrefix(uri, "/") {
		return nil
	}
	if proto != "http" {
		proto = "https"
	}
	u, err := url.Parse(proto + "://" + host + uri)
	if err != nil || u.Host != host {
		return nil
	}
	return u
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
