// Command flood floods the service with random well-shaped bearer tokens (each
// a resolver call, were it not for the per-client budget) from one or many
// client addresses, while real users present new valid tokens, and reports
// what reached Authgear, what the users got, and what it cost the service.
// bench/flood.sh runs it; everything is on 127.0.0.1.
//
// Client addresses are carried in X-Forwarded-For, as a gateway on loopback
// (a trusted proxy by default) sends them.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authgear/authgear-forwardauth/bench/internal/benchtok"
)

func main() {
	service := flag.String("service", "", "the service's base URL")
	fake := flag.String("fake", "", "the fake Authgear's base URL (for its call counts)")
	pid := flag.Int("pid", 0, "the service's pid, for its RSS")
	conns := flag.Int("conns", 1000, "flooding connections")
	addrs := flag.Int("addrs", 1, "flooding client addresses (connection i uses address i mod addrs)")
	duration := flag.Duration("duration", 20*time.Second, "how long the flood lasts")
	users := flag.Int("users", 50, "real users, each from an address of its own")
	every := flag.Duration("user-every", time.Second, "how often each real user presents a new valid token")
	rate := flag.Float64("rate", 20, "RESOLVER_CLIENT_RATE of the service (for the budget line)")
	burst := flag.Int("burst", 100, "RESOLVER_CLIENT_BURST of the service")
	flag.Parse()
	if *service == "" || *fake == "" || *conns < 1 || *addrs < 1 {
		fmt.Fprintln(os.Stderr, "need -service, -fake, -conns >= 1, -addrs >= 1")
		os.Exit(2)
	}

	floodClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext, MaxIdleConns: *conns, MaxIdleConnsPerHost: *conns,
		DisableCompression: true, IdleConnTimeout: 30 * time.Second,
	}}
	userClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: *users, DisableCompression: true,
	}}
	calls0 := fakeCalls(*fake, "flood")
	// The service's memory and goroutines: now, every second, and after.
	var maxRSS, maxG float64
	sample := func() (float64, float64) {
		rss := vmRSS(*pid)
		g := metric(*service, "go_goroutines", "")
		maxRSS, maxG = max(maxRSS, rss), max(maxG, g)
		return rss, g
	}
	rss0, g0 := sample()

	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	var floodStatus sync.Map // status -> *atomic.Int64
	var floodSent atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for c := range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			xff := floodAddr(c % *addrs)
			rng := rand.New(rand.NewPCG(uint64(c), uint64(start.UnixNano())))
			for ctx.Err() == nil {
				code := get(ctx, floodClient, *service, randomToken(rng), xff)
				if ctx.Err() != nil && code == 0 {
					return // cut by the end of the flood
				}
				floodSent.Add(1)
				v, _ := floodStatus.LoadOrStore(code, new(atomic.Int64))
				v.(*atomic.Int64).Add(1)
			}
		}()
	}

	var mu sync.Mutex
	var lat []time.Duration
	var ok, sent atomic.Int64
	userCodes := map[int]int{}
	for u := range *users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			xff := fmt.Sprintf("198.51.100.%d", 1+u%250)
			t := time.NewTicker(*every)
			defer t.Stop()
			// Spread the users over the first interval.
			select {
			case <-time.After(time.Duration(u) * *every / time.Duration(*users)):
			case <-ctx.Done():
				return
			}
			for n := int64(0); ctx.Err() == nil; n++ {
				tok := benchtok.Token("user", int64(u)*1_000_000+n) // never seen before: a miss
				t0 := time.Now()
				code := get(context.Background(), userClient, *service, tok, xff) // not cut at the end
				d := time.Since(t0)
				sent.Add(1)
				mu.Lock()
				lat = append(lat, d)
				userCodes[code]++
				mu.Unlock()
				if code == 200 {
					ok.Add(1)
				}
				select {
				case <-t.C:
				case <-ctx.Done():
				}
			}
		}()
	}

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(time.Second)
loop:
	for {
		select {
		case <-done:
			break loop
		case <-tick.C:
			sample()
		}
	}
	tick.Stop()
	elapsed := time.Since(start)
	time.Sleep(3 * time.Second) // requests in flight end; the service settles
	rss1, g1 := sample()
	floodCalls := fakeCalls(*fake, "flood") - calls0

	fmt.Printf("flood: %d connections from %d address(es) for %s: %d requests (%.0f/s); status",
		*conns, *addrs, elapsed.Round(100*time.Millisecond), floodSent.Load(), float64(floodSent.Load())/elapsed.Seconds())
	var codes []int
	floodStatus.Range(func(k, _ any) bool { codes = append(codes, k.(int)); return true })
	slices.Sort(codes)
	for _, c := range codes {
		v, _ := floodStatus.Load(c)
		fmt.Printf(" %s=%d", codeName(c), v.(*atomic.Int64).Load())
	}
	fmt.Println()
	budget := float64(*addrs) * (*rate*elapsed.Seconds() + float64(*burst))
	fmt.Printf("resolver calls by the flood: %d (budget: %d address(es) x (%.0f/s x %.1f s + %d) = %.0f; %.0f/s)\n",
		floodCalls, *addrs, *rate, elapsed.Seconds(), *burst, budget, float64(floodCalls)/elapsed.Seconds())
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	var uc []string
	for c, n := range userCodes {
		uc = append(uc, fmt.Sprintf("%s=%d", codeName(c), n))
	}
	slices.Sort(uc)
	fmt.Printf("real users: %d users, each a new valid token every %s: %d/%d got 200 (%s); latency p50 %s, p99 %s, max %s\n",
		*users, *every, ok.Load(), sent.Load(), strings.Join(uc, " "), pct(0.50).Round(100*time.Microsecond),
		pct(0.99).Round(100*time.Microsecond), pct(1).Round(100*time.Microsecond))
	fmt.Printf("service: RSS %.1f MiB before, %.1f MiB at most, %.1f MiB after; goroutines %.0f before, %.0f at most, %.0f after\n",
		rss0/(1<<20), maxRSS/(1<<20), rss1/(1<<20), g0, maxG, g1)
	for _, reason := range []string{"client_rate", "no_slot", "circuit_open"} {
		fmt.Printf("service: resolver_rejected_total{reason=%q} %.0f\n", reason, metric(*service, "forwardauth_resolver_rejected_total", `reason="`+reason+`"`))
	}
	if sent.Load() == 0 || ok.Load() != sent.Load() {
		fmt.Println("FAIL: not every real user got in")
		os.Exit(1)
	}
	if float64(floodCalls) > budget {
		fmt.Println("FAIL: the flood made more resolver calls than its budget")
		os.Exit(1)
	}
}

var alnum = []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")

// randomToken is a well-shaped opaque token nobody was ever issued.
func randomToken(rng *rand.Rand) string {
	b := []byte("flood")
	for len(b) < benchtok.Len {
		b = append(b, alnum[rng.IntN(len(alnum))])
	}
	return string(b)
}

func floodAddr(i int) string { return fmt.Sprintf("203.0.%d.%d", 113+i/250, 1+i%250) }

func get(ctx context.Context, c *http.Client, base, token, xff string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/auth", nil)
	if err != nil {
		return -1
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X-Forwarded-For", xff)
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func codeName(c int) string {
	if c == 0 {
		return "error"
	}
	return strconv.Itoa(c)
}

func fakeCalls(fake, prefix string) int64 {
	resp, err := http.Get(fake + "/_calls?prefix=" + prefix)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// metric sums the samples of a Prometheus metric whose labels contain sel.
func metric(base, name, sel string) float64 {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		if sel != "" && !strings.Contains(line, sel) {
			continue
		}
		f := strings.Fields(line)
		v, _ := strconv.ParseFloat(f[len(f)-1], 64)
		sum += v
	}
	return sum
}

func vmRSS(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb * 1024
		}
	}
	return 0
}
