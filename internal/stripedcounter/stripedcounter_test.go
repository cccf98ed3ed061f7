package stripedcounter

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"
)

func TestStripesFor(t *testing.T) {
	for procs, want := range map[int]int{0: 1, 1: 4, 2: 8, 3: 16, 4: 16, 5: 32, 16: 64, 17: 64, 256: 64} {
		if got := stripesFor(procs); got != want {
			t.Errorf("stripesFor(%d) = %d, want %d", procs, got, want)
		}
	}
}

// TestConcurrentIncSums counts every Inc once, whatever stripe it took and
// however the goroutines interleave (run it with -race too).
func TestConcurrentIncSums(t *testing.T) {
	const goroutines, each = 8, 5000
	plain := NewCounter(prometheus.CounterOpts{Name: "plain_total", Help: "h"})
	vec := NewCounterVec(prometheus.CounterOpts{Name: "vec_total", Help: "h"}, []string{"l"})
	a, b := vec.WithLabelValues("a"), vec.WithLabelValues("b")
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(plain, vec)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for i := range each {
				plain.Inc()
				a.Inc()
				if i%2 == 0 {
					b.Inc()
				}
				if i%1000 == 0 {
					if _, err := reg.Gather(); err != nil { // a scrape while counting
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	for _, tt := range []struct {
		name string
		c    prometheus.Collector
		want float64
	}{{"plain", plain, goroutines * each}, {"a", a, goroutines * each}, {"b", b, goroutines * each / 2}} {
		if got := testutil.ToFloat64(tt.c); got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, got, tt.want)
		}
	}

	// Every stripe is in the sum, whichever ones the goroutines took.
	c := newCounter(prometheus.NewDesc("x_total", "h", nil, nil), nil, 8)
	for i := range c.stripes {
		c.stripes[i].n.Add(uint64(1) << i)
	}
	c.Inc()
	if got := testutil.ToFloat64(c); got != 256 {
		t.Errorf("sum of 8 stripes holding 1, 2, 4... 128, plus an Inc = %v, want 256", got)
	}
}

// TestStacksSpreadOverStripes checks that goroutines, whose stacks lie at
// multiples of a power-of-two size, are spread over the stripes about as
// well as by chance: n stacks reach at least n/2 of n stripes, 4n reach all.
func TestStacksSpreadOverStripes(t *testing.T) {
	c := newCounter(prometheus.NewDesc("x_total", "h", nil, nil), nil, 8)
	for _, base := range []uintptr{0xc000000000, 0xc000123000, 0x7f0012340000} {
		for size := uintptr(2048); size <= 64<<10; size <<= 1 {
			for _, off := range []uintptr{0x100, 0x7a8} { // a frame's place in its stack
				for _, tt := range []struct{ stacks, want int }{{8, 4}, {32, 8}} {
					seen := map[uint64]bool{}
					for k := range tt.stacks {
						i := c.index(base + uintptr(k)*size + off)
						if i >= uint64(len(c.stripes)) {
							t.Fatalf("index %d of %d stripes", i, len(c.stripes))
						}
						seen[i] = true
					}
					if len(seen) < tt.want {
						t.Errorf("%d stacks of %d bytes from %#x reach %d stripes, want at least %d",
							tt.stacks, size, base, len(seen), tt.want)
					}
				}
			}
		}
	}
	one := newCounter(prometheus.NewDesc("x_total", "h", nil, nil), nil, 1)
	if i := one.index(0xc000123456); i != 0 {
		t.Errorf("index %d of one stripe", i)
	}
}

// counters is the same metrics made by client_golang or by this package.
type counters struct {
	plain, constant interface{ Inc() }
	children        []interface{ Inc() }
}

// register makes the metrics in reg: a plain counter, one with const labels,
// a vector registered through a wrapping registerer (as main.go does), and
// a vector with no series yet.
func register(reg prometheus.Registerer, striped bool) counters {
	plainOpts := prometheus.CounterOpts{Name: "test_plain_total", Help: "A plain counter."}
	constOpts := prometheus.CounterOpts{Namespace: "ns", Subsystem: "sub", Name: "const_total",
		Help: "With \"quotes\" and \\ and\nnewline.", ConstLabels: prometheus.Labels{"zone": "z1"}}
	vecOpts := prometheus.CounterOpts{Name: "test_lookups_total", Help: "Lookups by tier and result."}
	emptyOpts := prometheus.CounterOpts{Name: "test_empty_total", Help: "No series yet."}
	labels := []string{"tier", "result"}
	values := [][]string{{"local", "hit"}, {"local", "miss"}, {"redis", "hit"}, {"redis", "miss"}}
	wrapped := prometheus.WrapRegistererWith(prometheus.Labels{"cache": "resolver"}, reg)
	var c counters
	if striped {
		plain, constant := NewCounter(plainOpts), NewCounter(constOpts)
		vec, empty := NewCounterVec(vecOpts, labels), NewCounterVec(emptyOpts, []string{"x"})
		for _, v := range values {
			c.children = append(c.children, vec.WithLabelValues(v...))
		}
		reg.MustRegister(plain, constant, empty)
		wrapped.MustRegister(vec)
		c.plain, c.constant = plain, constant
	} else {
		plain, constant := prometheus.NewCounter(plainOpts), prometheus.NewCounter(constOpts)
		vec, empty := prometheus.NewCounterVec(vecOpts, labels), prometheus.NewCounterVec(emptyOpts, []string{"x"})
		for _, v := range values {
			c.children = append(c.children, vec.WithLabelValues(v...))
		}
		reg.MustRegister(plain, constant, empty)
		wrapped.MustRegister(vec)
		c.plain, c.constant = plain, constant
	}
	return c
}

func (c counters) count() {
	for range 3 {
		c.plain.Inc()
	}
	c.constant.Inc()
	for i, child := range c.children {
		for range i * 7 { // 0 for the first: a series at zero is shown too
			child.Inc()
		}
	}
}

// TestExpositionMatchesClientGolang serves the same counts from
// client_golang's counters and from these, and wants the same bytes.
func TestExpositionMatchesClientGolang(t *testing.T) {
	regs := [2]*prometheus.Registry{prometheus.NewPedanticRegistry(), prometheus.NewPedanticRegistry()}
	for i, reg := range regs {
		register(reg, i == 1).count()
	}
	var bodies [2]string
	for i, reg := range regs {
		srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		srv.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
		}
		bodies[i] = string(b)
	}
	if bodies[0] != bodies[1] {
		t.Errorf("exposition differs\nclient_golang:\n%s\nstriped:\n%s", bodies[0], bodies[1])
	}

	// The gathered families (what the protobuf and OpenMetrics formats
	// carry) are equal but for the created timestamps' times.
	var families [2][]proto.Message
	for i, reg := range regs {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				if m.GetCounter().GetCreatedTimestamp() == nil {
					t.Errorf("%d: %s{%v} has no created timestamp", i, mf.GetName(), m.GetLabel())
				}
				m.GetCounter().CreatedTimestamp = nil
			}
			families[i] = append(families[i], mf)
		}
	}
	if len(families[0]) != len(families[1]) {
		t.Fatalf("%d families from client_golang, %d striped", len(families[0]), len(families[1]))
	}
	for i := range families[0] {
		if !proto.Equal(families[0][i], families[1][i]) {
			t.Errorf("family differs:\nclient_golang: %v\nstriped:       %v", families[0][i], families[1][i])
		}
	}
}

// TestCollectorShape checks what testutil and the registry expect of a
// collector: a child is one series, a vector without series describes
// itself, a second registration of the same name is refused.
func TestCollectorShape(t *testing.T) {
	vec := NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "h"}, []string{"a", "b"})
	c := vec.WithLabelValues("1", "2")
	if vec.WithLabelValues("1", "2") != c {
		t.Error("the same label values gave another counter")
	}
	c.Inc()
	if got := testutil.ToFloat64(c); got != 1 {
		t.Errorf("ToFloat64 = %v, want 1", got)
	}
	if n := testutil.CollectAndCount(vec); n != 1 {
		t.Errorf("vector has %d series, want 1", n)
	}
	if err := testutil.CollectAndCompare(vec, strings.NewReader(`
# HELP x_total h
# TYPE x_total counter
x_total{a="1",b="2"} 1
`)); err != nil {
		t.Error(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(vec)
	if err := reg.Register(NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "h"}, []string{"a", "b"})); err == nil {
		t.Error("a second x_total was registered")
	}
	if err := reg.Register(NewCounter(prometheus.CounterOpts{Name: "", Help: "h"})); err == nil {
		t.Error("a counter without a name was registered")
	}
	for _, values := range [][]string{{"1"}, {"1", "2", "3"}, {"1", "\xff"}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("WithLabelValues(%q) did not panic", values)
				}
			}()
			vec.WithLabelValues(values...)
		}()
	}
}

func TestIncAllocatesNothing(t *testing.T) {
	plain := NewCounter(prometheus.CounterOpts{Name: "p_total", Help: "h"})
	child := NewCounterVec(prometheus.CounterOpts{Name: "v_total", Help: "h"}, []string{"l"}).WithLabelValues("x")
	for name, inc := range map[string]func(){"Counter": plain.Inc, "child": child.Inc} {
		if n := testing.AllocsPerRun(1000, inc); n != 0 {
			t.Errorf("%s.Inc allocates %v times", name, n)
		}
	}
}

// BenchmarkInc compares an Inc here with client_golang's, with every P
// incrementing the same series (-cpu 1,2,... shows how each scales).
func BenchmarkInc(b *testing.B) {
	opts := prometheus.CounterOpts{Name: "b_total", Help: "h"}
	for _, bm := range []struct {
		name string
		c    interface{ Inc() }
	}{
		{"striped", NewCounterVec(opts, []string{"l"}).WithLabelValues("x")},
		{"client_golang", prometheus.NewCounterVec(opts, []string{"l"}).WithLabelValues("x")},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					bm.c.Inc()
				}
			})
		})
	}
}
