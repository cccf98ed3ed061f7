package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgear/authgear-forwardauth/cache/redistest"
	"github.com/authgear/authgear-forwardauth/resolver"
	"github.com/authgear/authgear-forwardauth/resolver/resolvertest"
)

// TestServeWithRedisModes runs two replicas of the service with
// REDIS_MODE=cluster and REDIS_MODE=sentinel against real set-ups: what one
// replica learnt from Authgear the other serves from Redis. With Sentinel the
// master is killed under load: no request fails or gets another user's
// answer, and the replicas use Redis again once the replica is promoted.
func TestServeWithRedisModes(t *testing.T) {
	for _, mode := range []string{"cluster", "sentinel"} {
		t.Run(mode, func(t *testing.T) {
			var url string
			var sentinel *redistest.Sentinel
			if mode == "cluster" {
				url = redistest.StartCluster(t).URL()
			} else {
				sentinel = redistest.StartSentinel(t)
				url = sentinel.URL()
			}
			ag := resolvertest.NewServer("project.example")
			defer ag.Close()
			const users, tokens = 10, 3000
			for u := range users {
				ag.AddUser(resolver.Identity{UserID: "u" + strconv.Itoa(u)})
			}
			for i := range tokens {
				ag.AddSession(resolvertest.Bearer, resolvertest.Token("tok"+strconv.Itoa(i)), "u"+strconv.Itoa(i%users))
			}

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			prefix := "modes-" + freePort(t) + ":"
			var addrs []string
			var done []chan error
			for range 2 {
				addr := "127.0.0.1:" + freePort(t)
				logs := &syncBuffer{}
				ch := make(chan error, 1)
				go func() {
					ch <- run(ctx, []string{"forwardauth"}, env(map[string]string{
						"AUTHGEAR_ENDPOINT":     "https://project.example",
						"AUTHGEAR_RESOLVER_URL": ag.ResolverURL().String(),
						"LISTEN_ADDR":           addr,
						"REDIS_MODE":            mode,
						"REDIS_URL":             url,
						"REDIS_KEY_PREFIX":      prefix,
						"CACHE_KEY_SECRET":      strings.Repeat("k", 32),
						"LOG_LEVEL":             "error",
						// One test client asks about 3000 new tokens.
						"RESOLVER_CLIENT_RATE": "0",
					}), logs, logs)
				}()
				waitReady(t, "http://"+addr+"/readyz")
				addrs = append(addrs, addr)
				done = append(done, ch)
			}

			// ask asks replica r about token i and checks the answer.
			ask := func(r, i int) error {
				req, _ := http.NewRequest("GET", "http://"+addrs[r]+"/auth", nil)
				req.Header.Set("Authorization", "Bearer "+resolvertest.Token("tok"+strconv.Itoa(i)))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return err
				}
				resp.Body.Close()
				want := "u" + strconv.Itoa(i%users)
				if got := resp.Header.Get(resolver.HeaderUserID); resp.StatusCode != 200 || got != want {
					return fmt.Errorf("replica %d, tok-%d: status %d, user %q; want 200, %q", r, i, resp.StatusCode, got, want)
				}
				return nil
			}
			// learnt reports whether token i, asked of replica 0, is then
			// served by replica 1 from Redis.
			next := 0
			learnt := func() bool {
				i := next
				next++
				if err := ask(0, i); err != nil {
					t.Fatal(err)
				}
				before := ag.Calls()
				if err := ask(1, i); err != nil {
					t.Fatal(err)
				}
				return ag.Calls() == before
			}
			if !learnt() {
				t.Fatal("the second replica asked Authgear again: Redis is not shared")
			}

			if sentinel != nil {
				// Two clients each walk through tokens on both replicas while
				// the master dies.
				var (
					wg      sync.WaitGroup
					stop    = make(chan struct{})
					served  atomic.Int64
					errOnce sync.Once
					loadErr error
				)
				for w := range 2 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 1000 + w; i < tokens; i += 2 {
							select {
							case <-stop:
								return
							default:
							}
							for r := range 2 {
								if err := ask(r, i); err != nil {
									errOnce.Do(func() { loadErr = err })
								}
								served.Add(1)
							}
							time.Sleep(time.Millisecond)
						}
					}()
				}
				waitFor(t, "load under way", func() bool { return served.Load() >= 200 })
				sentinel.Failover()
				after := served.Load()
				waitFor(t, "load after the failover", func() bool {
					n := served.Load()
					return n >= after+200 || n >= 2*(tokens-1000) // or every token asked
				})
				close(stop)
				wg.Wait()
				if loadErr != nil {
					t.Fatalf("under failover: %v", loadErr)
				}
				waitFor(t, "replicas sharing Redis again after the failover", learnt)
				t.Logf("%d requests across the failover, all answered right", served.Load())
			}

			cancel()
			for _, ch := range done {
				if err := <-ch; err != nil {
					t.Fatalf("run: %v", err)
				}
			}
		})
	}
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
