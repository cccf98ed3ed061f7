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
	"strconv"
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
	msg := fmt.Sprintf("%s not found on PATH (apt-get install redis-server, or run .ci/run)", bin)
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
	s.cmd = exec.Command(s.bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
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
