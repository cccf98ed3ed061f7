// Package proc starts the service binary for the load programs under bench/.
package proc

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"time"
)

// StartService runs bin with env (and a free LISTEN_ADDR on 127.0.0.1) and
// waits until it is ready; it returns the base URL and a func that stops it.
func StartService(bin string, env []string) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin)
	cmd.Env = append(append(os.Environ(), env...), "LISTEN_ADDR="+addr)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return "http://" + addr, stop, nil
			}
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("service on %s never became ready", addr)
		}
	}
}
