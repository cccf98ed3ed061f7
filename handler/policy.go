package handler

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/authgear/authgear-forwardauth/resolver"
)

// policy is a route's access rule, given as query parameters on the auth URL
// of that gateway location.
type policy struct {
	allowAnonymous  bool     // accept Authgear's anonymous users
	requireVerified bool     // only users with a verified identity
	optional        bool     // no valid credential: 200 with empty identity headers
	roles           []string // any of these
	// preflightOnly: the location is for CORS preflights alone (Traefik's
	// preflight router): anything else is refused, whoever sends it.
	preflightOnly bool
}

// parsePolicy reads a policy. Anything it does not know is an error: a typo
// in a gateway config must never loosen a route.
func parsePolicy(rawQuery string) (policy, error) {
	var p policy
	if rawQuery == "" {
		return p, nil
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return p, fmt.Errorf("malformed policy query %q: %v", rawQuery, err)
	}
	for name, values := range q {
		if len(values) > 1 {
			return p, fmt.Errorf("policy parameter %q given %d times", name, len(values))
		}
		v := values[0]
		switch name {
		case "allow_anonymous":
			p.allowAnonymous, err = flag(name, v)
		case "require_verified":
			p.requireVerified, err = flag(name, v)
		case "optional":
			p.optional, err = flag(name, v)
		case "preflight_only":
			p.preflightOnly, err = flag(name, v)
		case "roles":
			for r := range strings.SplitSeq(v, ",") {
				if r = strings.TrimSpace(r); r == "" {
					return p, fmt.Errorf("policy parameter roles=%q has an empty role", v)
				}
				p.roles = append(p.roles, r)
			}
		default:
			return p, fmt.Errorf("unknown policy parameter %q (known: allow_anonymous, require_verified, roles, optional, preflight_only)", name)
		}
		if err != nil {
			return p, err
		}
	}
	if p.preflightOnly && len(q) > 1 {
		// Nothing else applies to such a location: another parameter is a
		// mistake about what it does.
		return p, fmt.Errorf("policy parameter preflight_only takes no other parameter (got %q)", rawQuery)
	}
	return p, nil
}

func flag(name, v string) (bool, error) {
	switch v {
	case "", "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, fmt.Errorf("policy parameter %s=%q: want true or false", name, v)
}

// permits reports whether a user Authgear accepted may enter the route.
func (p policy) permits(id resolver.Identity) bool {
	if id.Anonymous && !p.allowAnonymous {
		return false
	}
	if p.requireVerified && !id.Verified {
		return false
	}
	if len(p.roles) > 0 && !slices.ContainsFunc(p.roles, func(r string) bool { return slices.Contains(id.Roles, r) }) {
		return false
	}
	return true
}

// policies remembers parsed policies: a gateway sends the same few queries
// on every request. The bound keeps client-influenced queries (Caddy appends
// the original query) from growing it.
type policies struct {
	m sync.Map // raw query -> policyResult
	n atomic.Int64
}

type policyResult struct {
	p   policy
	err error
}

const maxRememberedPolicies = 1024

func (ps *policies) parse(rawQuery string) (policy, error) {
	if rawQuery == "" {
		return policy{}, nil
	}
	if v, ok := ps.m.Load(rawQuery); ok {
		r := v.(policyResult)
		return r.p, r.err
	}
	p, err := parsePolicy(rawQuery)
	if ps.n.Load() < maxRememberedPolicies {
		if _, loaded := ps.m.LoadOrStore(rawQuery, policyResult{p, err}); !loaded {
			ps.n.Add(1)
		}
	}
	return p, err
}

// routePolicies returns the policies a request must pass. Caddy appends the
// original request's query to the auth URI, so a query ending in the
// original one (known from a trusted X-Forwarded-Uri) may be the operator's
// policy followed by the client's query, or the operator's policy alone that
// happens to end like it. Both readings that parse must permit: the client's
// query can then never loosen a route.
func (ps *policies) routePolicies(rawQuery, originalQuery string) (routePolicy, error) {
	full, fullErr := ps.parse(rawQuery)
	stripped, ok := stripSuffixQuery(rawQuery, originalQuery)
	if !ok {
		return routePolicy{p: [2]policy{full}, n: 1}, fullErr
	}
	own, ownErr := ps.parse(stripped)
	switch {
	case ownErr != nil && fullErr != nil:
		return routePolicy{}, ownErr
	case ownErr != nil:
		return routePolicy{p: [2]policy{full}, n: 1}, nil
	case fullErr != nil:
		return routePolicy{p: [2]policy{own}, n: 1}, nil
	}
	return routePolicy{p: [2]policy{full, own}, n: 2}, nil
}

// routePolicy is one or two policies that must all agree (kept in an array
// so that the hot path does not allocate).
type routePolicy struct {
	p [2]policy
	n int
}

// optional: every reading lets a request without a valid credential through.
func (rp routePolicy) optional() bool {
	for _, p := range rp.p[:rp.n] {
		if !p.optional {
			return false
		}
	}
	return rp.n > 0
}

// preflightOnly: a reading makes the location one for preflights alone.
func (rp routePolicy) preflightOnly() bool {
	for _, p := range rp.p[:rp.n] {
		if p.preflightOnly {
			return true
		}
	}
	return false
}

func (rp routePolicy) permits(id resolver.Identity) bool {
	for _, p := range rp.p[:rp.n] {
		if !p.permits(id) {
			return false
		}
	}
	return true
}

func stripSuffixQuery(rawQuery, suffix string) (string, bool) {
	switch {
	case suffix == "":
		return "", false
	case rawQuery == suffix:
		return "", true
	case strings.HasSuffix(rawQuery, "&"+suffix):
		return rawQuery[:len(rawQuery)-len(suffix)-1], true
	}
	return "", false
}
