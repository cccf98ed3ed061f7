//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gateway starts one real gateway with the shipped files from deploy/ and
// returns its base URL (http://127.0.0.1:PORT).
type gateway struct {
	name  string
	start func(t *testing.T, st *stack) string
}

var gateways = []gateway{
	{"nginx", startNginx},
	{"traefik", startTraefik},
	{"traefik-docker-labels", startTraefikLabels},
	{"traefik-kubernetes-crd", startTraefikCRD},
	{"caddy", startCaddy},
	{"haproxy", startHAProxy},
}

// waitRouted polls the gateway until a request for the app is answered by the
// service (401 without credentials), i.e. its routes are loaded.
func waitRouted(t *testing.T, p *process, base string) {
	t.Helper()
	waitRoutedHost(t, p, base, appHost)
}

// waitRoutedHost is waitRouted for an application at host.
func waitRoutedHost(t *testing.T, p *process, base, host string) {
	t.Helper()
	waitFor(t, p, 30*time.Second, func() error {
		req, _ := http.NewRequest(http.MethodGet, base+"/__e2e_ready", nil)
		req.Host = host
		req.Header.Set("Accept", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			return fmt.Errorf("GET /__e2e_ready: %s, want 401", resp.Status)
		}
		return nil
	})
}

// startNginx runs deploy/nginx/forwardauth.conf (and its snippets) under a
// minimal main nginx.conf of the test's own, like Debian's or the official
// image's nginx.conf includes conf.d/*.conf.
func startNginx(t *testing.T, st *stack) string {
	return startNginxIn(t, st, t.TempDir())
}

// startNginxIn is startNginx with its files, the access log among them
// (dir/access.log), in dir.
func startNginxIn(t *testing.T, st *stack, dir string) string {
	bin := findBinary(t, "FORWARDAUTH_E2E_NGINX", "", "nginx", "/usr/sbin/nginx")
	port := st.port(t)
	writeFile(t, filepath.Join(dir, "conf.d", "forwardauth.conf"), template(t, "nginx/forwardauth.conf",
		"listen 80;", fmt.Sprintf("listen 127.0.0.1:%d;", port),
		"server_name "+appHost+";", "server_name "+strings.Join(st.publicHosts(), " ")+";",
		"access_log /var/log/nginx/access.log forwardauth;", "access_log "+filepath.Join(dir, "access.log")+" forwardauth;",
		"server forwardauth:8080;", "server "+st.service+";",
		"server app:8080;", "server "+st.upstream.addr()+";",
	))
	for _, s := range []string{"forwardauth-authrequest.conf", "forwardauth-identity.conf"} {
		writeFile(t, filepath.Join(dir, "snippets", s), template(t, "nginx/snippets/"+s))
	}
	user := ""
	if os.Geteuid() == 0 {
		// Workers would otherwise run as nobody, who cannot use the temp dir.
		user = "user root;\n"
	}
	writeFile(t, filepath.Join(dir, "nginx.conf"), user+`worker_processes 1;
events { worker_connections 256; }
http {
    access_log off;
    include conf.d/*.conf;
}
`)
	p := startProcess(t, "nginx", exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"),
		"-g", fmt.Sprintf("daemon off; pid %s; error_log stderr;", filepath.Join(dir, "nginx.pid"))))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitRoutedHost(t, p, base, st.publicHosts()[0])
	return base
}

// startTraefik runs deploy/traefik/traefik.yml with deploy/traefik/dynamic.yml.
func startTraefik(t *testing.T, st *stack) string { return startTraefikWith(t, st) }

// startTraefikWith makes more replacements (old, new pairs) in traefik.yml.
func startTraefikWith(t *testing.T, st *stack, replacements ...string) string {
	bin := findBinary(t, "FORWARDAUTH_E2E_TRAEFIK", "traefik-"+traefikVersion, "traefik")
	dir := t.TempDir()
	port := st.port(t)
	hosts := make([]string, 0, 2)
	for _, h := range st.publicHosts() {
		hosts = append(hosts, "Host(`"+h+"`)")
	}
	dynamic := filepath.Join(dir, "dynamic.yml")
	writeFile(t, dynamic, template(t, "traefik/dynamic.yml",
		"http://forwardauth:8080", "http://"+st.service,
		"Host(`"+appHost+"`)", "("+strings.Join(hosts, " || ")+")",
		"http://app:8080", "http://"+st.upstream.addr(),
	))
	static := filepath.Join(dir, "traefik.yml")
	writeFile(t, static, template(t, "traefik/traefik.yml",
		append([]string{
			`address: ":80"`, fmt.Sprintf(`address: "127.0.0.1:%d"`, port),
			"filename: /etc/traefik/dynamic.yml", "filename: " + dynamic,
		}, replacements...)...,
	))
	p := startProcess(t, "traefik", exec.Command(bin, "--configFile="+static))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitRoutedHost(t, p, base, st.publicHosts()[0])
	return base
}

// startCaddy runs deploy/caddy/Caddyfile, served over plain HTTP on a spare
// port (the shipped site address gets automatic HTTPS).
func startCaddy(t *testing.T, st *stack) string { return startCaddyWith(t, st, "") }

// startCaddyWith adds directives at the top of the site block, and env
// (NAME=value) to Caddy's environment.
func startCaddyWith(t *testing.T, st *stack, directives string, env ...string) string {
	bin := findBinary(t, "FORWARDAUTH_E2E_CADDY", "caddy-"+caddyVersion, "caddy")
	dir := t.TempDir()
	port := st.port(t)
	sites := make([]string, 0, 2)
	for _, h := range st.publicHosts() {
		sites = append(sites, fmt.Sprintf("http://%s:%d", h, port))
	}
	site := strings.Join(sites, ", ") + " {"
	if directives != "" {
		site += "\n" + directives
	}
	caddyfile := filepath.Join(dir, "Caddyfile")
	writeFile(t, caddyfile, template(t, "caddy/Caddyfile",
		appHost+" {", site,
		"forward_auth forwardauth:8080 {", "forward_auth "+st.service+" {",
		"reverse_proxy forwardauth:8080", "reverse_proxy "+st.service,
		"reverse_proxy app:8080", "reverse_proxy "+st.upstream.addr(),
	))
	cmd := exec.Command(bin, "run", "--config", caddyfile, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(),
		fmt.Sprintf("CADDY_ADMIN=127.0.0.1:%d", freePort(t)),
		"XDG_DATA_HOME="+filepath.Join(dir, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"HOME="+dir,
	)
	cmd.Env = append(cmd.Env, env...)
	p := startProcess(t, "caddy", cmd)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitRoutedHost(t, p, base, st.publicHosts()[0])
	return base
}

// startHAProxy runs deploy/haproxy/haproxy.cfg with deploy/haproxy/forwardauth.lua.
func startHAProxy(t *testing.T, st *stack) string {
	return startHAProxyWith(t, st.service, st.upstream.addr())
}

// startHAProxyWith runs the shipped HAProxy files with the given service and
// application addresses (host:port) and any further replacements.
func startHAProxyWith(t *testing.T, service, app string, replacements ...string) string {
	bin := findBinary(t, "FORWARDAUTH_E2E_HAPROXY", "", "haproxy", "/usr/sbin/haproxy")
	dir := t.TempDir()
	port := freePort(t)
	lua := filepath.Join(dir, "forwardauth.lua")
	writeFile(t, lua, template(t, "haproxy/forwardauth.lua"))
	cfg := filepath.Join(dir, "haproxy.cfg")
	writeFile(t, cfg, template(t, "haproxy/haproxy.cfg", append([]string{
		"bind :80", fmt.Sprintf("bind 127.0.0.1:%d", port),
		"/etc/haproxy/forwardauth.lua", lua,
		"forwardauth:8080", service,
		"server app app:8080", "server app " + app,
	}, replacements...)...))
	// -db: stay in the foreground; -W would add a master process.
	p := startProcess(t, "haproxy", exec.Command(bin, "-db", "-f", cfg))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitRouted(t, p, base)
	return base
}
