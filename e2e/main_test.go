//go:build e2e

// Package e2e runs the real service behind each real gateway (nginx, Traefik,
// Caddy, HAProxy) with the very configuration files shipped in deploy/, templated only
// for ports and addresses, in front of the Authgear test double, a real Redis
// and an echoing upstream.
//
//	.ci/e2e.sh
//	FORWARDAUTH_E2E=required go test -tags e2e ./e2e/ -count=1 -v
//
// A missing gateway or redis-server skips its tests, unless
// FORWARDAUTH_E2E=required, which makes it a failure. Binaries are looked up
// in FORWARDAUTH_E2E_{NGINX,TRAEFIK,CADDY,HAPROXY,REDIS,CHROMIUM}, then in the cache directory
// .ci/gateways.sh builds into, then in PATH.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// serviceBinary is the forwardauth binary TestMain builds.
var serviceBinary string

// repoRoot is the module root (the parent of e2e/).
var repoRoot string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	repoRoot = filepath.Dir(wd)
	dir, err := os.MkdirTemp("", "forwardauth-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	serviceBinary = filepath.Join(dir, "forwardauth")
	build := exec.Command("go", "build", "-o", serviceBinary, ".")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building the service failed: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}
