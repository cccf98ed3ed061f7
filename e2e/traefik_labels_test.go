//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// startTraefikLabels runs deploy/traefik/docker-labels.yml through a real
// Traefik without Docker: the traefik service's command flags are the static
// configuration, with the Docker provider swapped for a file provider, and
// the app and forwardauth containers' labels become that file, keys and
// values unchanged, plus the service and router targets the Docker provider
// would infer from each container. Traefik decodes labels and files into the same structure
// (case-insensitively), so what runs is what the labels say.
func startTraefikLabels(t *testing.T, st *stack) string {
	bin := findBinary(t, "FORWARDAUTH_E2E_TRAEFIK", "traefik-"+traefikVersion, "traefik")
	flags, labels := readComposeTraefik(t, "traefik/docker-labels.yml")
	dir := t.TempDir()
	port := freePort(t)

	root := labelTree{}
	routers := map[string]string{} // router -> its container, the default service
	explicit := map[string]bool{}  // routers that name their service
	addresses := 0
	for _, cl := range labels {
		l := cl.label
		key, value, ok := strings.Cut(l, "=")
		if !ok || !strings.HasPrefix(key, "traefik.") {
			t.Fatalf("deploy/traefik/docker-labels.yml: label %q is not traefik.<key>=<value>", l)
		}
		path := strings.Split(strings.TrimPrefix(key, "traefik."), ".")
		switch {
		case key == "traefik.enable", slices.Equal(path[:2], []string{"http", "services"}):
			continue // Docker-only: the container's own port
		case slices.Equal(path[:2], []string{"http", "routers"}):
			routers[path[2]] = cl.container
			explicit[path[2]] = explicit[path[2]] || len(path) == 4 && path[3] == "service"
		}
		if strings.Contains(value, "http://forwardauth:8080/") {
			value = strings.ReplaceAll(value, "http://forwardauth:8080/", "http://"+st.service+"/")
			addresses++
		}
		root.set(t, path, value)
	}
	if addresses == 0 {
		t.Fatal("deploy/traefik/docker-labels.yml: no label names http://forwardauth:8080/: update the e2e templating")
	}
	if len(routers) == 0 {
		t.Fatal("deploy/traefik/docker-labels.yml: no router labels found")
	}
	for r, container := range routers {
		if !explicit[r] {
			root.set(t, []string{"http", "routers", r, "service"}, container)
		}
	}
	var b strings.Builder
	root.write(&b, 0)
	fmt.Fprintf(&b, "  services:\n    app:\n      loadBalancer:\n        servers:\n          - url: 'http://%s'\n", st.upstream.addr())
	fmt.Fprintf(&b, "    forwardauth:\n      loadBalancer:\n        servers:\n          - url: 'http://%s'\n", st.service)
	dynamic := filepath.Join(dir, "dynamic.yml")
	writeFile(t, dynamic, b.String())

	args := []string{
		"--providers.file.filename=" + dynamic,
		// Test-only: no calls home from the test machine.
		"--global.checkNewVersion=false", "--global.sendAnonymousUsage=false",
	}
	sawAddress := false
	for _, f := range flags {
		switch {
		case strings.HasPrefix(f, "--providers.docker"):
			continue
		case f == "--entryPoints.web.address=:80":
			f, sawAddress = fmt.Sprintf("--entryPoints.web.address=127.0.0.1:%d", port), true
		}
		args = append(args, f)
	}
	if !sawAddress {
		t.Fatal("deploy/traefik/docker-labels.yml no longer has --entryPoints.web.address=:80: update the e2e templating")
	}
	p := startProcess(t, "traefik (docker labels)", exec.Command(bin, args...))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitRouted(t, p, base)
	return base
}

// composeLabel is a label of one of the compose file's containers.
type composeLabel struct{ container, label string }

// readComposeTraefik reads, line by line, the command list of the compose
// file's traefik service and the labels of its app and forwardauth services.
func readComposeTraefik(t *testing.T, rel string) (flags []string, labels []composeLabel) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy", rel))
	if err != nil {
		t.Fatal(err)
	}
	service, list := "", ""
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		indent := len(line) - len(strings.TrimLeft(line, " "))
		switch {
		case trimmed == "" || strings.HasPrefix(trimmed, "#"):
		case indent == 2 && strings.HasSuffix(trimmed, ":"):
			service, list = strings.TrimSuffix(trimmed, ":"), ""
		case indent == 4:
			list = strings.TrimSuffix(trimmed, ":")
		case indent == 6 && strings.HasPrefix(trimmed, "- "):
			item := strings.TrimPrefix(trimmed, "- ")
			switch {
			case service == "traefik" && list == "command":
				flags = append(flags, item)
			case (service == "app" || service == "forwardauth") && list == "labels":
				labels = append(labels, composeLabel{service, item})
			}
		}
	}
	if len(flags) == 0 || len(labels) == 0 {
		t.Fatalf("deploy/%s: found %d traefik command flags and %d app labels: update the e2e templating", rel, len(flags), len(labels))
	}
	return flags, labels
}

// labelTree is the nested form of dotted label keys.
type labelTree map[string]any

func (n labelTree) set(t *testing.T, path []string, value string) {
	t.Helper()
	if len(path) == 1 {
		if _, dup := n[path[0]]; dup {
			t.Fatalf("label key %s given twice or with sub-keys", path[0])
		}
		n[path[0]] = value
		return
	}
	child, ok := n[path[0]].(labelTree)
	if !ok {
		if _, isValue := n[path[0]]; isValue {
			t.Fatalf("label key %s has a value and sub-keys", path[0])
		}
		child = labelTree{}
		n[path[0]] = child
	}
	child.set(t, path[1:], value)
}

// write emits the tree as YAML, every value a single-quoted string.
func (n labelTree) write(b *strings.Builder, depth int) {
	keys := make([]string, 0, len(n))
	for k := range n {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		indent := strings.Repeat("  ", depth)
		switch v := n[k].(type) {
		case labelTree:
			fmt.Fprintf(b, "%s%s:\n", indent, k)
			v.write(b, depth+1)
		case string:
			fmt.Fprintf(b, "%s%s: '%s'\n", indent, k, strings.ReplaceAll(v, "'", "''"))
		}
	}
}
