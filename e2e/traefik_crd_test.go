//go:build e2e

package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// crdServiceURL is the service's address in deploy/traefik/kubernetes-middleware.yaml.
const crdServiceURL = "http://authgear-forwardauth.authgear-forwardauth.svc.cluster.local:8080/"

// startTraefikCRD runs deploy/traefik/kubernetes-middleware.yaml through a
// real Traefik without Kubernetes: each Middleware's spec becomes a
// file-provider middleware of the same name (the CRD's fields are the file
// provider's), the IngressRoute's routes become routers with the same match,
// priority and middlewares, and the entry point gets the flags the file's
// header says to give Traefik. Only addresses are rewritten.
func startTraefikCRD(t *testing.T, st *stack) string {
	bin := findBinary(t, "FORWARDAUTH_E2E_TRAEFIK", "traefik-"+traefikVersion, "traefik")
	const rel = "traefik/kubernetes-middleware.yaml"
	text := template(t, rel, crdServiceURL, "http://"+st.service+"/")
	dir := t.TempDir()
	port := freePort(t)

	var middlewares, routers strings.Builder
	var flags []string
	nRouters := 0
	for _, doc := range strings.Split(text, "\n---\n") {
		lines := strings.Split(doc, "\n")
		for _, l := range lines {
			// The entry point flags, from the file's header comment.
			if f, ok := strings.CutPrefix(strings.TrimSpace(l), "#     - --entryPoints.websecure."); ok {
				flags = append(flags, "--entryPoints.websecure."+f)
			}
		}
		kind, name, spec := crdDocument(lines)
		switch kind {
		case "Middleware":
			fmt.Fprintf(&middlewares, "    %s:\n", name)
			for _, l := range spec {
				fmt.Fprintf(&middlewares, "      %s\n", l)
			}
		case "IngressRoute":
			for _, r := range crdRoutes(t, spec) {
				nRouters++
				fmt.Fprintf(&routers, "    r%d:\n      rule: '%s'\n      entryPoints: [websecure]\n      service: %s\n      middlewares: [%s]\n",
					nRouters, strings.ReplaceAll(r.match, "'", "''"), r.crdService(), strings.Join(r.middlewares, ", "))
				if r.priority != "" {
					fmt.Fprintf(&routers, "      priority: %s\n", r.priority)
				}
			}
		}
	}
	if middlewares.Len() == 0 || nRouters == 0 || len(flags) == 0 {
		t.Fatalf("deploy/%s: found no Middleware, IngressRoute route or entry point flag: update the e2e templating", rel)
	}
	dynamic := filepath.Join(dir, "dynamic.yml")
	writeFile(t, dynamic, "http:\n  middlewares:\n"+middlewares.String()+"  routers:\n"+routers.String()+
		fmt.Sprintf("  services:\n    app:\n      loadBalancer:\n        servers:\n          - url: 'http://%s'\n", st.upstream.addr())+
		fmt.Sprintf("    forwardauth:\n      loadBalancer:\n        servers:\n          - url: 'http://%s'\n", st.service))

	args := append([]string{
		fmt.Sprintf("--entryPoints.websecure.address=127.0.0.1:%d", port),
		"--providers.file.filename=" + dynamic,
		"--global.checkNewVersion=false", "--global.sendAnonymousUsage=false",
	}, flags...)
	p := startProcess(t, "traefik (kubernetes CRD)", exec.Command(bin, args...))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitRouted(t, p, base)
	return base
}

// crdDocument returns a YAML document's kind, metadata.name and the lines
// of its spec, one level of indentation removed.
func crdDocument(lines []string) (kind, name string, spec []string) {
	section := ""
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "kind: "):
			kind = strings.TrimPrefix(l, "kind: ")
		case l == "metadata:" || l == "spec:":
			section = strings.TrimSuffix(l, ":")
		case strings.HasPrefix(l, "  ") && section == "metadata" && strings.HasPrefix(l, "  name: "):
			name = strings.TrimPrefix(l, "  name: ")
		case strings.HasPrefix(l, "  ") && section == "spec":
			if strings.TrimSpace(l) != "" && !strings.HasPrefix(strings.TrimSpace(l), "#") {
				spec = append(spec, strings.TrimPrefix(l, "  "))
			}
		case l != "" && !strings.HasPrefix(l, " ") && !strings.HasPrefix(l, "#"):
			section = ""
		}
	}
	return kind, name, spec
}

type crdRoute struct {
	match, priority string
	middlewares     []string
	services        []string
}

// crdService is the service of the dynamic file a route's Kubernetes
// Service stands for: the forwardauth service's, or the application.
func (r crdRoute) crdService() string {
	if slices.Equal(r.services, []string{"authgear-forwardauth"}) {
		return "forwardauth"
	}
	return "app"
}

// crdRoutes reads an IngressRoute spec's routes.
func crdRoutes(t *testing.T, spec []string) []crdRoute {
	t.Helper()
	var rs []crdRoute
	list := ""
	for _, l := range spec {
		trimmed := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(trimmed, "- match: "):
			rs = append(rs, crdRoute{match: strings.TrimPrefix(trimmed, "- match: ")})
			list = ""
		case len(rs) == 0:
		case strings.HasPrefix(trimmed, "priority: "):
			rs[len(rs)-1].priority = strings.TrimPrefix(trimmed, "priority: ")
		case trimmed == "middlewares:" || trimmed == "services:":
			list = strings.TrimSuffix(trimmed, ":")
		case list == "middlewares" && strings.HasPrefix(trimmed, "- name: "):
			rs[len(rs)-1].middlewares = append(rs[len(rs)-1].middlewares, strings.TrimPrefix(trimmed, "- name: "))
		case list == "services" && strings.HasPrefix(trimmed, "- name: "):
			rs[len(rs)-1].services = append(rs[len(rs)-1].services, strings.TrimPrefix(trimmed, "- name: "))
		}
	}
	if len(rs) == 0 {
		t.Fatal("IngressRoute without routes")
	}
	return rs
}
