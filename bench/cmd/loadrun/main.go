// Command loadrun drives the service binary through a scripted run and
// reports what it cost: answers by status, latency, and the service's own
// goroutines and resident memory (from its /metrics) before, during and after.
//
//	-mode slow: Authgear answers every resolve in -delay (10s); -clients
//	            concurrent clients send new tokens for -duration. The
//	            answers must stay within RESOLVER_TIMEOUT, memory and
//	            goroutines flat.
//	-mode soak: mixed load for -duration (cache hits, new tokens, bad
//	            tokens, no credential, purges through the webhook) against
//	            the service with a real Redis.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authgear/authgear-forwardauth/bench/internal/benchtok"
	"github.com/authgear/authgear-forwardauth/bench/internal/proc"
	"github.com/authgear/authgear-forwardauth/resolver"
	"github.com/authgear/authgear-forwardauth/resolver/resolvertest"
)

func main() {
	mode := flag.String("mode", "slow", "slow or soak")
	service := flag.String("service", "", "path to the built service binary")
	redisURL := flag.String("redis", "", "redis:// URL (soak)")
	clients := flag.Int("clients", 500, "concurrent clients")
	duration := flag.Duration("duration", 30*time.Second, "how long the load runs")
	delay := flag.Duration("delay", 10*time.Second, "latency of every resolve (slow)")
	flag.Parse()
	if err := run(*mode, *service, *redisURL, *clients, *duration, *delay); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

const webhookSecret = "loadrun-webhook-secret"

func run(mode, service, redisURL string, clients int, duration, delay time.Duration) error {
	if service == "" {
		return fmt.Errorf("-service is required")
	}
	ag := resolvertest.NewServer("project.example")
	defer ag.Close()
	// Any token number N of "tok" is valid for user-(N mod 1000); bad-* are
	// not (nor even of Authgear's shape: refused before the resolver).
	ag.Override(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mode == "slow" {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if n, ok := benchtok.Number("tok", tok); ok {
			i := int(n)
			w.Header().Set(resolver.HeaderSessionValid, "true")
			w.Header().Set(resolver.HeaderUserID, "user-"+strconv.Itoa(i%1000))
			w.Header().Set(resolver.HeaderUserAnonymous, "false")
			w.Header().Set(resolver.HeaderUserVerified, "true")
			w.Header().Set(resolver.HeaderSessionAMR, "pwd")
		}
	}))

	env := []string{
		"AUTHGEAR_ENDPOINT=https://project.example",
		"AUTHGEAR_RESOLVER_URL=" + ag.ResolverURL().String(),
		"AUTHGEAR_WEBHOOK_SECRET=" + webhookSecret,
		"LOG_LEVEL=error",
		// Every simulated client shares 127.0.0.1: no per-client budget.
		"RESOLVER_CLIENT_RATE=0",
	}
	if redisURL != "" {
		env = append(env, "REDIS_URL="+redisURL, "REDIS_KEY_PREFIX=loadrun:", "CACHE_KEY_SECRET=loadrun-cache-key-secret-0123456789abcdef")
	}
	base, stop, err := proc.StartService(service, env)
	if err != nil {
		return err
	}
	defer stop()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}, Timeout: 30 * time.Second}
	report := func(when string) {
		g, rss := sample(client, base)
		fmt.Printf("%-8s service goroutines %5.0f, RSS %6.1f MiB, resolver calls so far %d\n", when, g, rss/(1<<20), ag.Calls())
	}
	report("before")

	var statuses sync.Map // status -> *atomic.Int64
	var mu sync.Mutex
	var latencies []time.Duration
	var next atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var wg sync.WaitGroup
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			var local []time.Duration
			for ctx.Err() == nil {
				req, _ := http.NewRequest("GET", base+"/auth", nil)
				switch {
				case mode == "slow":
					req.Header.Set("Authorization", "Bearer "+benchtok.Token("tok", next.Add(1)))
				default:
					switch p := rng.IntN(100); {
					case p < 70: // a warm session
						req.Header.Set("Authorization", "Bearer "+benchtok.Token("tok", rng.Int64N(500)))
					case p < 85: // a new one
						req.Header.Set("Authorization", "Bearer "+benchtok.Token("tok", 100000+next.Add(1)))
					case p < 95:
						req.Header.Set("Authorization", "Bearer bad-"+strconv.Itoa(rng.IntN(1000)))
					}
				}
				start := time.Now()
				resp, err := client.Do(req)
				status := 0
				if err == nil {
					status = resp.StatusCode
					resp.Body.Close()
				}
				local = append(local, time.Since(start))
				v, _ := statuses.LoadOrStore(status, new(atomic.Int64))
				v.(*atomic.Int64).Add(1)
			}
			mu.Lock()
			latencies = append(latencies, local...)
			mu.Unlock()
		}()
	}
	if mode == "soak" {
		// Purges through the webhook every second, as a busy project's
		// profile updates would.
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				time.Sleep(time.Second)
				body := `{"type":"user.profile.updated","payload":{"user":{"id":"user-` + strconv.Itoa(i%1000) + `"}}}`
				mac := hmac.New(sha256.New, []byte(webhookSecret))
				mac.Write([]byte(body))
				req, _ := http.NewRequest("POST", base+"/webhooks/authgear", bytes.NewReader([]byte(body)))
				req.Header.Set("x-authgear-body-signature", hex.EncodeToString(mac.Sum(nil)))
				if resp, err := client.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}()
	}
	go func() {
		for t := time.NewTicker(max(duration/4, time.Second)); ; {
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
				report("during")
			}
		}
	}()
	wg.Wait()
	time.Sleep(delay/2 + 3*time.Second) // let calls in flight end
	report("after")

	slices.Sort(latencies)
	pct := func(p float64) time.Duration {
		return latencies[int(float64(len(latencies)-1)*p)].Round(time.Millisecond)
	}
	var parts []string
	statuses.Range(func(k, v any) bool {
		parts = append(parts, fmt.Sprintf("%d: %d", k, v.(*atomic.Int64).Load()))
		return true
	})
	slices.Sort(parts)
	fmt.Printf("%d answers in %v by %d clients (%s); latency p50 %v, p99 %v, max %v\n",
		len(latencies), duration, clients, strings.Join(parts, ", "), pct(0.5), pct(0.99), latencies[len(latencies)-1].Round(time.Millisecond))
	return nil
}

// sample reads the service's goroutines and resident memory.
func sample(c *http.Client, base string) (goroutines, rss float64) {
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		return -1, -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			goroutines, _ = strconv.ParseFloat(v, 64)
		}
		if v, ok := strings.CutPrefix(line, "process_resident_memory_bytes "); ok {
			rss, _ = strconv.ParseFloat(v, 64)
		}
	}
	return goroutines, rss
}
