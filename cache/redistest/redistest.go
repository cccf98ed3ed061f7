// Package redistest runs real redis-server processes for tests.
//
// A test that needs Redis but finds no redis-server binary is skipped, unless
// FORWARDAUTH_E2E=required (as in CI), where it fails.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a redis-server process owned by one test.
type Server struct {
	Addr string
	t    testing.TB
	cmd  *exec.Cmd
	bin  string
	args []string // beyond port, bind and persistence
}

// URL is the redis:// URL of the server.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Require skips (or, with FORWARDAUTH_E2E=required, fails) t when bin is not
// installed, and returns its path.
func Require(t testing.TB, bin string) string {
	t.Helper()
	path, err := exec.LookPath(bin)
	if err == nil {
		return path
	}
	pkg := map[string]string{"redis-cli": "redis-tools", "redis-sentinel": "redis-sentinel"}[bin]
	if pkg == "" {
		pkg = "redis-server"
	}
	msg := fmt.Sprintf("%s not found on PATH (apt-get install %s, or run .ci/run)", bin, pkg)
	if os.Getenv("FORWARDAUTH_E2E") == "required" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// URL returns the URL of a Redis for t: FORWARDAUTH_TEST_REDIS_URL when set
// (shared; tests must use their own key prefix), otherwise a new server.
func URL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("FORWARDAUTH_TEST_REDIS_URL"); u != "" {
		return u
	}
	return Start(t).URL()
}

// Start runs a new redis-server on a free port, stopped at the end of t.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, bin: Require(t, "redis-server")}
	s.Addr = freeAddr(t)
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.Addr)
	s.cmd = exec.Command(s.bin, append([]string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}, s.args...)...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting redis-server: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c.Ping(context.Background()).Err() == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %s did not come up", s.Addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop kills the server (idempotent).
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// Restart starts a stopped server again on the same address, empty.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// Client returns a client of the server, closed at the end of the test.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	s.t.Cleanup(func() { c.Close() })
	return c
}

// freeAddr finds a port nobody listens on now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// startServer runs a redis-server with extra arguments, stopped at the end of
// t.
func startServer(t testing.TB, bin string, args ...string) *Server {
	t.Helper()
	s := &Server{t: t, bin: bin, Addr: freeAddr(t), args: args}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

// Cluster is a Redis Cluster of three masters (no replicas) owned by one
// test.
type Cluster struct {
	Addrs []string  // of the masters, as given to redis-cli --cluster create
	Nodes []*Server // in the order of Addrs
	t     testing.TB
}

// StartCluster runs a 3-master Redis Cluster on spare ports, ready (every
// node says cluster_state:ok) when it returns, and stopped at the end of t.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	server := Require(t, "redis-server")
	cli := Require(t, "redis-cli")
	dir := t.TempDir() // before the nodes, so that it is removed after them
	c := &Cluster{t: t}
	for range 3 {
		// The bus port is given rather than left at port+10000, which may be
		// taken or out of range.
		_, bus, _ := net.SplitHostPort(freeAddr(t))
		n := &Server{t: t, bin: server, Addr: freeAddr(t)}
		_, port, _ := net.SplitHostPort(n.Addr)
		n.args = []string{"--cluster-enabled", "yes", "--cluster-port", bus,
			"--cluster-config-file", filepath.Join(dir, "nodes-"+port+".conf"),
			"--cluster-node-timeout", "2000", "--dir", dir}
		n.start()
		t.Cleanup(n.Stop)
		c.Nodes = append(c.Nodes, n)
		c.Addrs = append(c.Addrs, n.Addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append(append([]string{"--cluster", "create"}, c.Addrs...), "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, n := range c.Nodes {
		waitFor(t, "cluster_state:ok on "+n.Addr, func(ctx context.Context) bool {
			cl := redis.NewClient(&redis.Options{Addr: n.Addr})
			defer cl.Close()
			info, err := cl.ClusterInfo(ctx).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok")
		})
	}
	return c
}

// URL is the cluster's address in the form of redis.ParseClusterURL (and so
// of REDIS_MODE=cluster).
func (c *Cluster) URL() string {
	u := "redis://" + c.Addrs[0]
	for i, a := range c.Addrs[1:] {
		u += map[bool]string{true: "?", false: "&"}[i == 0] + "addr=" + a
	}
	return u
}

// Client returns a cluster client, closed at the end of the test.
func (c *Cluster) Client() *redis.ClusterClient {
	c.t.Helper()
	o, err := redis.ParseClusterURL(c.URL())
	if err != nil {
		c.t.Fatal(err)
	}
	cl := redis.NewClusterClient(o)
	c.t.Cleanup(func() { cl.Close() })
	return cl
}

// Sentinel is a master, one replica of it and one sentinel watching them,
// owned by one test. The sentinel promotes the replica half a second after
// the master stops answering.
type Sentinel struct {
	MasterName string
	Addr       string    // of the sentinel
	Servers    []*Server // the first started as master, the second as its replica
	t          testing.TB
	cmd        *exec.Cmd
	log        string // the sentinel's log file
}

// StartSentinel runs a master, its replica and a sentinel on spare ports,
// ready (the sentinel knows the replica) when it returns, and stopped at the
// end of t.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	server := Require(t, "redis-server")
	sentinel := Require(t, "redis-sentinel")
	dir := t.TempDir()
	s := &Sentinel{MasterName: "mymaster", t: t}
	// Diskless sync without delay: the replica is in sync at once.
	sync := []string{"--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0", "--dir", dir}
	master := startServer(t, server, sync...)
	mhost, mport, _ := net.SplitHostPort(master.Addr)
	replica := startServer(t, server, append([]string{"--replicaof", mhost, mport}, sync...)...)
	s.Servers = []*Server{master, replica}
	waitFor(t, "the replica in sync", func(ctx context.Context) bool {
		return infoHas(ctx, replica.Addr, "replication", "master_link_status:up") &&
			infoHas(ctx, master.Addr, "replication", "connected_slaves:1")
	})

	// The sentinel learns of the replica from the master's INFO, read as it
	// connects, so it starts after the replica is attached.
	s.Addr = freeAddr(t)
	_, port, _ := net.SplitHostPort(s.Addr)
	conf := filepath.Join(dir, "sentinel.conf") // rewritten by the sentinel
	s.log = filepath.Join(dir, "sentinel.log")
	err := os.WriteFile(conf, []byte(fmt.Sprintf(`port %s
bind 127.0.0.1
dir %s
logfile %s
sentinel monitor %s %s %s 1
sentinel down-after-milliseconds %[4]s 500
sentinel failover-timeout %[4]s 2000
sentinel parallel-syncs %[4]s 1
`, port, dir, s.log, s.MasterName, mhost, mport)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(sentinel, conf)
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting redis-sentinel: %v", err)
	}
	t.Cleanup(s.stopSentinel)
	waitForOr(t, "the sentinel watching the master and its replica", s.logTail, func(ctx context.Context) bool {
		sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr})
		defer sc.Close()
		replicas, err := sc.Replicas(ctx, s.MasterName).Result()
		if err != nil || len(replicas) != 1 {
			return false
		}
		return replicas[0]["flags"] == "slave" && replicas[0]["master-link-status"] == "ok"
	})
	return s
}

// logTail is the end of the sentinel's log, for failures.
func (s *Sentinel) logTail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return "sentinel log:\n" + string(b)
}

func (s *Sentinel) stopSentinel() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// URL is the sentinel's address in the form of redis.ParseFailoverURL (and
// so of REDIS_MODE=sentinel).
func (s *Sentinel) URL() string { return "redis://" + s.Addr + "?master_name=" + s.MasterName }

// Client returns a failover client, closed at the end of the test.
func (s *Sentinel) Client() *redis.Client {
	s.t.Helper()
	o, err := redis.ParseFailoverURL(s.URL())
	if err != nil {
		s.t.Fatal(err)
	}
	c := redis.NewFailoverClient(o)
	s.t.Cleanup(func() { c.Close() })
	return c
}

// MasterAddr is the address of the master as the sentinel names it now.
func (s *Sentinel) MasterAddr() string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := s.masterAddr(ctx)
	if err != nil {
		s.t.Fatalf("asking the sentinel for the master: %v", err)
	}
	return a
}

func (s *Sentinel) masterAddr(ctx context.Context) (string, error) {
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr})
	defer sc.Close()
	a, err := sc.GetMasterAddrByName(ctx, s.MasterName).Result()
	if err != nil {
		return "", err
	}
	if len(a) != 2 {
		return "", fmt.Errorf("unexpected answer %q", a)
	}
	return net.JoinHostPort(a[0], a[1]), nil
}

// KillMaster kills the current master process and returns its address.
func (s *Sentinel) KillMaster() string {
	s.t.Helper()
	addr := s.MasterAddr()
	for _, srv := range s.Servers {
		if srv.Addr == addr {
			srv.Stop()
			return addr
		}
	}
	s.t.Fatalf("the sentinel names %s, which is none of ours", addr)
	return ""
}

// WaitForNewMaster waits until the sentinel names a master other than old
// and that server says it is a master, and returns its address.
func (s *Sentinel) WaitForNewMaster(old string) string {
	s.t.Helper()
	var addr string
	waitForOr(s.t, "the sentinel promoting a new master", s.logTail, func(ctx context.Context) bool {
		a, err := s.masterAddr(ctx)
		addr = a
		return err == nil && addr != old && infoHas(ctx, addr, "replication", "role:master")
	})
	return addr
}

// Failover kills the master and waits until the sentinel has promoted the
// replica; it returns the new master's address.
func (s *Sentinel) Failover() string {
	s.t.Helper()
	return s.WaitForNewMaster(s.KillMaster())
}

// infoHas reports whether the INFO section of the server at addr has line.
func infoHas(ctx context.Context, addr, section, line string) bool {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	info, err := c.Info(ctx, section).Result()
	if err != nil {
		return false
	}
	for _, l := range strings.Split(info, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}

// waitFor polls cond until it holds, failing t after a generous deadline: it
// waits for a state, it does not time it.
func waitFor(t testing.TB, what string, cond func(ctx context.Context) bool) {
	t.Helper()
	waitForOr(t, what, func() string { return "" }, cond)
}

// waitForOr is waitFor, adding detail() to the failure.
func waitForOr(t testing.TB, what string, detail func() string, cond func(ctx context.Context) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		ok := cond(ctx)
		cancel()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: never happened: %s\n%s", what, detail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
