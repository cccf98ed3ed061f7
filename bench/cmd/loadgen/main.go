// Command loadgen sends /auth requests carrying many distinct bearer tokens,
// which wrk does poorly: -n requests, request i carrying token
// <prefix><offset + (i/T) mod K> to target i mod T (T targets), so that with
// several targets (replicas) every token reaches each of them.
//
// Either -c workers over keep-alive connections (throughput: 1,000,000
// distinct sessions), or -burst: all -n requests at once, each on its own
// connection, released together (resolver economy under concurrency).
// It prints one summary line and exits 1 if any answer was not a 200.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authgear/authgear-forwardauth/bench/internal/benchtok"
)

func main() {
	targets := flag.String("targets", "", "comma-separated base URLs of the service (e.g. http://127.0.0.1:8080)")
	path := flag.String("path", "/auth", "path requested")
	n := flag.Int("n", 1000, "number of requests")
	k := flag.Int("k", 0, "number of distinct tokens (default -n)")
	offset := flag.Int("offset", 0, "first token number")
	prefix := flag.String("prefix", "tok", "token prefix (letters; tokens are numbered by bench/internal/benchtok)")
	c := flag.Int("c", 64, "concurrent workers, each with its keep-alive connection (ignored with -burst)")
	burst := flag.Bool("burst", false, "send all -n requests at once, each on its own connection")
	maxDur := flag.Duration("max-duration", 5*time.Minute, "stop sending after this long")
	progress := flag.Duration("progress", 0, "if set, print progress to stderr this often")
	flag.Parse()
	urls := strings.Split(*targets, ",")
	if *targets == "" || *n < 1 {
		log.Fatal("need -targets and -n >= 1")
	}
	if *k <= 0 {
		*k = *n
	}
	workers := *c
	if *burst {
		workers = *n
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        workers + 16,
		MaxIdleConnsPerHost: workers + 16,
		DisableCompression:  true,
		IdleConnTimeout:     30 * time.Second,
	}
	if *burst {
		tr.DisableKeepAlives = true // one connection per request: truly concurrent
	}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), *maxDur)
	defer cancel()

	var (
		next     atomic.Int64
		mu       sync.Mutex
		statuses = map[string]int{}
		wg       sync.WaitGroup
		start    = make(chan struct{})
		done     atomic.Int64
	)
	tally := func(s string) {
		mu.Lock()
		statuses[s]++
		mu.Unlock()
	}
	do := func(i int) {
		t := i % len(urls)
		tok := benchtok.Token(*prefix, int64(*offset+(i/len(urls))%*k))
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, urls[t]+*path, nil)
		if err != nil {
			log.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			tally("error")
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		tally(strconv.Itoa(resp.StatusCode))
		done.Add(1)
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= *n {
					return
				}
				do(i)
			}
		}()
	}
	if *progress > 0 {
		go func() {
			for range time.Tick(*progress) {
				fmt.Fprintf(os.Stderr, "loadgen: %d/%d\n", done.Load(), *n)
			}
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(t0)

	var parts []string
	ok := true
	for s, cnt := range statuses {
		parts = append(parts, fmt.Sprintf("%s=%d", s, cnt))
		if s != "200" {
			ok = false
		}
	}
	sent := int(min(next.Load(), int64(*n)))
	fmt.Printf("loadgen: %d requests (%d distinct tokens, %d targets) in %.2fs, %.0f req/s; status %s\n",
		sent, min(*k, (sent+len(urls)-1)/len(urls)), len(urls), elapsed.Seconds(), float64(sent)/elapsed.Seconds(), strings.Join(parts, " "))
	if ctx.Err() != nil {
		fmt.Println("loadgen: stopped by -max-duration")
		os.Exit(1)
	}
	if !ok {
		os.Exit(1)
	}
}
