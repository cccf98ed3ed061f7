// Command revocationlag measures how long a revoked user keeps access: two
// replicas of the service share one Redis and serve a steady load, with
// caches that would otherwise keep every allow for an hour; a user.disabled
// webhook is sent to one replica; the lag is the time from the webhook's 200
// to the last allow either replica served for that user.
package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authgear/authgear-forwardauth/bench/internal/benchtok"
	"github.com/authgear/authgear-forwardauth/bench/internal/proc"
	"github.com/authgear/authgear-forwardauth/resolver"
	"github.com/authgear/authgear-forwardauth/resolver/resolvertest"
)

func main() {
	service := flag.String("service", "", "path to the built service binary")
	redisURL := flag.String("redis", "", "redis:// URL shared by the replicas")
	rounds := flag.Int("rounds", 5, "revocations to measure")
	workers := flag.Int("workers", 32, "concurrent clients per replica")
	flag.Parse()
	if err := run(*service, *redisURL, *rounds, *workers); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

const (
	users  = 100
	secret = "bench-webhook-secret"
)

func run(service, redisURL string, rounds, workers int) error {
	if service == "" || redisURL == "" {
		return fmt.Errorf("-service and -redis are required")
	}
	ag := resolvertest.NewServer("project.example")
	defer ag.Close()
	for i := range users {
		id := "user-" + strconv.Itoa(i)
		ag.AddUser(resolver.Identity{UserID: id})
		ag.AddSession(resolvertest.Bearer, benchtok.Token("tok", int64(i)), id)
	}
	var replicas []string
	for range 2 {
		base, stop, err := proc.StartService(service, []string{
			"AUTHGEAR_ENDPOINT=https://project.example",
			"AUTHGEAR_RESOLVER_URL=" + ag.ResolverURL().String(),
			"REDIS_URL=" + redisURL,
			"REDIS_KEY_PREFIX=revocationlag:",
			"CACHE_KEY_SECRET=bench-cache-key-secret-0123456789abcdef",
			"CACHE_TTL=1h",
			"LOCAL_CACHE_TTL=1h",
			"AUTHGEAR_WEBHOOK_SECRET=" + secret,
			"LOG_LEVEL=warn",
			"RESOLVER_CLIENT_RATE=0", // all users share 127.0.0.1
		})
		if err != nil {
			return err
		}
		defer stop()
		replicas = append(replicas, base)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers * 2}, Timeout: 5 * time.Second}

	var lags []time.Duration
	var total atomic.Int64
	for round := range rounds {
		victim := round // a user no earlier round revoked
		victimTok := benchtok.Token("tok", int64(victim))
		var mu sync.Mutex
		lastAllow := map[string]time.Time{}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for _, base := range replicas {
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ctx.Err() == nil; i++ {
						tok := victimTok
						if (i+w)%4 != 0 {
							tok = benchtok.Token("tok", int64(rounds+(i*7+w)%(users-rounds)))
						}
						status := get(client, base, tok)
						total.Add(1)
						if tok == victimTok && status == 200 {
							now := time.Now()
							mu.Lock()
							if now.After(lastAllow[base]) {
								lastAllow[base] = now
							}
							mu.Unlock()
						}
					}
				}()
			}
		}
		time.Sleep(2 * time.Second) // every replica now holds the victim's allow in memory
		ag.DisableUser("user-"+strconv.Itoa(victim), true)
		body := fmt.Sprintf(`{"id":"e%d","seq":%d,"type":"user.disabled","payload":{"user":{"id":"user-%d","is_disabled":true}},"context":{"timestamp":%d}}`,
			round, round, victim, time.Now().Unix())
		acked, err := sendWebhook(client, replicas[0], body)
		if err != nil {
			cancel()
			wg.Wait()
			return err
		}
		time.Sleep(2 * time.Second)
		cancel()
		wg.Wait()
		lag := time.Duration(0)
		for _, base := range replicas {
			if d := lastAllow[base].Sub(acked); d > lag {
				lag = d
			}
		}
		lags = append(lags, lag)
		fmt.Printf("round %d: last allow for the revoked user %v after the webhook's 200 (replica A %v, B %v)\n",
			round+1, lag.Round(time.Microsecond), lastAllow[replicas[0]].Sub(acked).Round(time.Microsecond), lastAllow[replicas[1]].Sub(acked).Round(time.Microsecond))
	}
	slices.Sort(lags)
	fmt.Printf("revocation lag over %d rounds (2 replicas, %d clients each, %d requests): median %v, max %v (negative: no allow after the 200)\n",
		rounds, workers, total.Load(), lags[len(lags)/2].Round(time.Microsecond), lags[len(lags)-1].Round(time.Microsecond))
	return nil
}

func get(c *http.Client, base, tok string) int {
	req, _ := http.NewRequest("GET", base+"/auth", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func sendWebhook(c *http.Client, base, body string) (time.Time, error) {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	req, _ := http.NewRequest("POST", base+"/webhooks/authgear", bytes.NewReader([]byte(body)))
	req.Header.Set("x-authgear-body-signature", hex.EncodeToString(mac.Sum(nil)))
	resp, err := c.Do(req)
	if err != nil {
		return time.Time{}, err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return time.Time{}, fmt.Errorf("webhook: status %d", resp.StatusCode)
	}
	return time.Now(), nil
}
