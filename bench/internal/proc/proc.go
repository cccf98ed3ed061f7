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

// Listen listens on addr and announces the URL served on: on stdout and, when
// urlFile is set, in that file (written whole, so a script polling for it
// never reads half of it).
func Listen(addr, urlFile string) (net.Listener, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	url := "http://" + ln.Addr().String()
	if urlFile != "" {
		if err := os.WriteFile(urlFile+".tmp", []byte(url+"\n"), 0o644); err != nil {
			return nil, "", err
		}
		if err := os.Rename(urlFile+".tmp", urlFile); err != nil {
			return nil, "", err
		}
	}
	fmt.Println(url)
	return ln, url, nil
}
