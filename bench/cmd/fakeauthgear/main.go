// Command fakeauthgear runs the Authgear test double (resolvertest.Server) as
// a process, for load tests: bearer tokens tok0..0 to tok..N-1 (numbered by
// bench/internal/benchtok, in Authgear's shape) are valid, each for one of
// -users users, optionally after an artificial delay.
//
// It prints its URL on stdout (and in -url-file). Besides Authgear's own
// routes it serves GET /_calls: how many requests reached the resolver so
// far, GET /_calls?prefix=P: how many carried a Bearer starting with P, and
// GET /_jwt: a new JWT access token of user 0.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/authgear/authgear-forwardauth/bench/internal/benchtok"
	"github.com/authgear/authgear-forwardauth/bench/internal/proc"

	"github.com/authgear/authgear-forwardauth/resolver"
	"github.com/authgear/authgear-forwardauth/resolver/resolvertest"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on (port 0: any free port)")
	urlFile := flag.String("url-file", "", "if set, write the URL served on to this file once listening")
	host := flag.String("host", "bench.authgear.test", "the project's public host (AUTHGEAR_ENDPOINT's host)")
	users := flag.Int("users", 1, "number of users")
	tokens := flag.Int("tokens", 1, "bearer tokens to register: <prefix>0 .. <prefix>N-1, token i belongs to user i mod -users")
	prefix := flag.String("prefix", "tok", "prefix (letters) of the registered tokens")
	acceptPrefix := flag.String("accept-prefix", "", "if set, every bearer token starting with it is valid without registering it, for millions of tokens: token N of the prefix for user N mod -users, any other for user 0")
	delay := flag.Duration("delay", 0, "artificial latency of every resolver answer (e.g. 10s for a slow Authgear)")
	flag.Parse()
	if *users < 1 || *tokens < 0 {
		log.Fatal("-users must be at least 1 and -tokens at least 0")
	}

	fake := resolvertest.NewServer(*host)
	defer fake.Close()
	ids := make([]resolver.Identity, *users)
	for i := range ids {
		ids[i] = identity(i)
		fake.AddUser(ids[i])
	}
	for i := 0; i < *tokens; i++ {
		fake.AddSession(resolvertest.Bearer, benchtok.Token(*prefix, int64(i)), ids[i%*users].UserID)
	}
	if p := *acceptPrefix; p != "" {
		allow := make([]http.Header, len(ids))
		for i, id := range ids {
			allow[i] = make(http.Header)
			setIdentity(allow[i], id)
		}
		fake.Override(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
			if strings.EqualFold(scheme, "Bearer") && strings.HasPrefix(token, p) {
				user := 0
				if n, ok := benchtok.Number(p, token); ok {
					user = int(n % int64(len(ids)))
				}
				h := w.Header()
				for k, v := range allow[user] {
					h[k] = v
				}
			}
			// Otherwise no identity headers: Authgear's answer to a bad token.
		}))
	}

	// The fake's routes, served on a listener of our own so that the address
	// can be chosen; the resolver is wrapped for the delay.
	inner := fake.Config.Handler
	// Calls by the prefix of their Bearer, counted on arrival.
	var byPrefix sync.Map // prefix -> *atomic.Int64
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		byPrefix.Range(func(k, v any) bool {
			if strings.HasPrefix(token, k.(string)) {
				v.(*atomic.Int64).Add(1)
			}
			return true
		})
		inner.ServeHTTP(w, r)
	})
	resolve := http.Handler(counted)
	if d := *delay; d > 0 {
		resolve = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
			case <-r.Context().Done():
			}
			counted.ServeHTTP(w, r)
		})
	}
	mux := http.NewServeMux()
	mux.Handle("/_resolver/resolve", resolve)
	mux.Handle("/resolve", resolve)
	mux.HandleFunc("/_calls", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if p := r.URL.Query().Get("prefix"); p != "" {
			v, _ := byPrefix.LoadOrStore(p, new(atomic.Int64))
			fmt.Fprintln(w, v.(*atomic.Int64).Load())
			return
		}
		fmt.Fprintln(w, fake.Calls())
	})
	mux.HandleFunc("/_jwt", func(w http.ResponseWriter, r *http.Request) {
		// A JWT access token of user 0, as Authgear issues them.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, fake.IssueJWT(ids[0].UserID))
	})
	mux.Handle("/", inner)

	ln, url, err := proc.Listen(*listen, *urlFile)
	if err != nil {
		log.Fatal(err)
	}
	// Discovery announces the JWKS on the fake's own address: make it this
	// listener's, which the service reaches with the project's Host.
	fake.URL = strings.TrimSuffix(url, "/")
	fmt.Fprintf(os.Stderr, "fakeauthgear: %s, host %s, %d users, %d tokens (%s..), accept-prefix %q, delay %s\n",
		url, *host, *users, *tokens, benchtok.Token(*prefix, 0), *acceptPrefix, *delay)

	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		fake.Close() // releases requests waiting on a delay
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

// identity is user i: user 0 has the very values of the baseline's headers
// (handler/bench_test.go), the others the same with another id of the same
// length, so that every answer has the baseline's size.
func identity(i int) resolver.Identity {
	id := resolver.Identity{
		UserID: "0b6cbbd4-7a45-4ab4-b2c3-6ea8b6e8a001", Verified: true, CanReauthenticate: true,
		Roles: []string{"admin", "editor"}, AMR: []string{"pwd", "otp"}, AuthenticatedAt: 1764000000,
	}
	if i > 0 {
		id.UserID = fmt.Sprintf("0b6cbbd4-7a45-4ab4-b2c3-%012x", i)
	}
	return id
}

// setIdentity writes id as Authgear's resolver does.
func setIdentity(h http.Header, id resolver.Identity) {
	h.Set(resolver.HeaderSessionValid, "true")
	h.Set(resolver.HeaderUserID, id.UserID)
	h.Set(resolver.HeaderUserAnonymous, strconv.FormatBool(id.Anonymous))
	h.Set(resolver.HeaderUserVerified, strconv.FormatBool(id.Verified))
	h.Set(resolver.HeaderUserCanReauth, strconv.FormatBool(id.CanReauthenticate))
	h.Set(resolver.HeaderUserRoles, strings.Join(id.Roles, ","))
	h.Set(resolver.HeaderSessionAMR, strings.Join(id.AMR, " "))
	h.Set(resolver.HeaderSessionAuthTime, strconv.FormatInt(id.AuthenticatedAt, 10))
}
