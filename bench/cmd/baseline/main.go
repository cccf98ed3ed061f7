// Command baseline is the benchmarks' yardstick: a bare net/http server that
// answers every request 200 with the same eight identity headers as the
// service's allow (the bareHandler of handler/bench_test.go), and does
// nothing else. The service can at best match it.
//
// It prints its URL on stdout (and in -url-file).
package main

import (
	"flag"
	"github.com/authgear/authgear-forwardauth/bench/internal/proc"
	"log"
	"net/http"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on (port 0: any free port)")
	urlFile := flag.String("url-file", "", "if set, write the URL served on to this file once listening")
	flag.Parse()

	ln, _, err := proc.Listen(*listen, *urlFile)
	if err != nil {
		log.Fatal(err)
	}
	// The same server settings as the service's (main.go), so that only the
	// handler differs.
	srv := &http.Server{
		Handler:           bareHandler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      12 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	log.Fatal(srv.Serve(ln))
}

// bareHandler only writes the headers, as handler/bench_test.go's does.
func bareHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Authgear-Session-Valid", "true")
		h.Set("X-Authgear-User-Id", "0b6cbbd4-7a45-4ab4-b2c3-6ea8b6e8a001")
		h.Set("X-Authgear-User-Anonymous", "false")
		h.Set("X-Authgear-User-Verified", "true")
		h.Set("X-Authgear-User-Can-Reauthenticate", "true")
		h.Set("X-Authgear-User-Roles", "admin,editor")
		h.Set("X-Authgear-Session-Amr", "pwd otp")
		h.Set("X-Authgear-Session-Authenticated-At", "1764000000")
		w.WriteHeader(http.StatusOK)
	})
}
