package handler

import (
	"net/http"
	"runtime"
	"syscall"
	"testing"
)

// BenchmarkThreadCPU runs the hit benchmarks on one locked OS thread and
// reports that thread's CPU time per request (thread-cpu-ns/op) besides the
// wall time: on a machine shared with other work, time spent waiting for a
// core is not counted, so the ratios between sub-benchmarks hold steadier.
// (Garbage collection runs on other threads: the bare baseline, which
// allocates, is if anything flattered.)
func BenchmarkThreadCPU(b *testing.B) {
	for _, c := range []struct {
		name string
		h    func(b *testing.B) (http.Handler, *http.Request)
	}{
		{"baseline", func(*testing.B) (http.Handler, *http.Request) { return bareHandler(), benchRequest() }},
		{"baseline-nine", func(b *testing.B) (http.Handler, *http.Request) { return bareHandlerNine(benchToken(b)), benchRequest() }},
		{"hit", func(b *testing.B) (http.Handler, *http.Request) {
			return newStack(b, stackOptions{}).handler, benchRequest()
		}},
		{"hit-gateway", func(b *testing.B) (http.Handler, *http.Request) {
			return newStack(b, stackOptions{trusted: gatewayPeers}).handler, benchRequestFromGateway()
		}},
		{"hit-gateway-assertion", func(b *testing.B) (http.Handler, *http.Request) {
			return newStack(b, stackOptions{assertion: newTestIssuer(b), trusted: gatewayPeers}).handler, benchRequestFromGateway()
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			h, r := c.h(b)
			w := &benchWriter{h: http.Header{}}
			h.ServeHTTP(w, r)
			if w.code != http.StatusOK {
				b.Fatalf("status %d", w.code)
			}
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			start := threadCPU(b)
			b.ResetTimer()
			for range b.N {
				w.reset()
				h.ServeHTTP(w, r)
			}
			b.StopTimer()
			b.ReportMetric(float64(threadCPU(b)-start)/float64(b.N), "thread-cpu-ns/op")
		})
	}
}

func threadCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
