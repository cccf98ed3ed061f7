package resolver_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgear/authgear-forwardauth/resolver"
)

// rawResolver answers every connection with answer, byte for byte: what no
// well-behaved server would send.
func rawResolver(t *testing.T, answer func(conn net.Conn)) *url.URL {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				// Read the request head first, as a server would.
				br := bufio.NewReader(conn)
				for {
					line, err := br.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				answer(conn)
			}()
		}
	}()
	u, _ := url.Parse("http://" + ln.Addr().String() + "/_resolver/resolve")
	return u
}

func newRawClient(t *testing.T, target *url.URL, timeout time.Duration) *resolver.Client {
	endpoint, _ := url.Parse("https://project.example")
	return resolver.NewClient(resolver.ClientConfig{Endpoint: endpoint, ResolverURL: target, Timeout: timeout},
		resolver.NewHTTPClient(timeout), slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
}

func resolveBearer(c *resolver.Client) (*resolver.Decision, error) {
	return c.Resolve(context.Background(), resolver.Request{Credentials: resolver.Credentials{Bearer: "tok"}})
}

func TestResolverAnswersNoWellBehavedServerGives(t *testing.T) {
	valid := "HTTP/1.1 200 OK\r\nX-Authgear-Session-Valid: true\r\nX-Authgear-User-Id: u1\r\n"
	tests := []struct {
		name   string
		answer func(net.Conn)
		allow  bool // else ErrUnavailable
	}{
		{"a 100 MB body is not read", func(c net.Conn) {
			io.WriteString(c, valid+"Content-Length: 104857600\r\n\r\n")
			chunk := strings.Repeat("x", 64<<10)
			for range 1600 {
				if _, err := io.WriteString(c, chunk); err != nil {
					return
				}
			}
		}, true},
		{"folded header smuggling a second one", func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Authgear-Session-Valid: true\r\nX-Authgear-User-Id: u1\r\n Set-Cookie: x=y\r\nContent-Length: 0\r\n\r\n")
		}, false},
		{"bare CR inside a value", func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Authgear-Session-Valid: true\r\nX-Authgear-User-Id: u1\rSet-Cookie: x=y\r\nContent-Length: 0\r\n\r\n")
		}, false},
		{"1 MB of headers", func(c net.Conn) {
			io.WriteString(c, valid+"X-Junk: "+strings.Repeat("j", 1<<20)+"\r\nContent-Length: 0\r\n\r\n")
		}, false},
		{"two validity headers", func(c net.Conn) {
			io.WriteString(c, valid+"X-Authgear-Session-Valid: false\r\nContent-Length: 0\r\n\r\n")
		}, false},
		{"not HTTP at all", func(c net.Conn) { io.WriteString(c, "SSH-2.0-OpenSSH\r\n") }, false},
		{"never answers, never closes", func(c net.Conn) { time.Sleep(5 * time.Second) }, false},
		{"headers then silence", func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Authgear-Session-Valid: true\r\n")
			time.Sleep(5 * time.Second)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newRawClient(t, rawResolver(t, tt.answer), 300*time.Millisecond)
			d, err := resolveBearer(c)
			if tt.allow {
				if err != nil || !d.Allow || d.Identity.UserID != "u1" {
					t.Fatalf("got %+v, %v; want an allow for u1", d, err)
				}
				return
			}
			if !errors.Is(err, resolver.ErrUnavailable) {
				t.Fatalf("got %+v, %v; want ErrUnavailable (503), never an allow or a deny", d, err)
			}
		})
	}
}
