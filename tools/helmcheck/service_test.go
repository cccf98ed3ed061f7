package helmcheck

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// The values of Secrets the chart only refers to (made elsewhere in a real
// cluster), for starting the service on the rendered configuration.
var otherSecrets = map[string]map[string]string{
	"redis": {"redis-password": "redis-password-123"},
}

// The service itself starts on what each case renders: the chart's
// variables are ones it accepts, in a form it accepts (a number printed as
// 2e+06 is refused at start-up, not by helm). Only LISTEN_ADDR is replaced,
// by a loopback address of the system's choosing; Redis and Authgear are not
// reached, which the service tolerates at start-up.
func TestServiceAcceptsRenderedConfig(t *testing.T) {
	bin := buildService(t)
	// The key file lives in a Secret mounted in the pod: here, a key set of
	// the service's own making stands in at another path.
	keys := filepath.Join(t.TempDir(), "jwks.json")
	out, err := exec.Command(bin, "genkey").Output()
	if err != nil {
		t.Fatalf("forwardauth genkey: %v", err)
	}
	if err := os.WriteFile(keys, out, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := containerEnv(t, render(t, c.args...))
			env["LISTEN_ADDR"] = "127.0.0.1:0"
			if _, ok := env["ASSERTION_KEYS_FILE"]; ok {
				env["ASSERTION_KEYS_FILE"] = keys
			}
			startService(t, bin, env)
		})
	}
}

func buildService(t *testing.T) string {
	t.Helper()
	helmBin(t) // the cases need helm: skip before building when it is missing
	bin := filepath.Join(t.TempDir(), "forwardauth")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the service: %v\n%s", err, out)
	}
	return bin
}

// containerEnv is the environment Kubernetes would give the container: the
// Secrets of envFrom first, then env in order, with $(NAME) expanded from
// the variables defined before it.
func containerEnv(t *testing.T, r rendered) map[string]string {
	t.Helper()
	secrets := map[string]map[string]string{}
	for name, data := range otherSecrets {
		secrets[name] = data
	}
	for _, o := range r {
		if s, ok := o.Value.(*corev1.Secret); ok {
			secrets[s.Name] = map[string]string{}
			for k, v := range s.Data {
				secrets[s.Name][k] = string(v)
			}
		}
	}
	c := container(t, r)
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		if from.SecretRef == nil {
			t.Fatalf("envFrom %+v: only Secrets expected", from)
		}
		data, ok := secrets[from.SecretRef.Name]
		if !ok {
			// An existing Secret of the user's, say with only
			// CACHE_KEY_SECRET: the case must start without it.
			continue
		}
		for k, v := range data {
			env[k] = v
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = varRef.ReplaceAllStringFunc(e.Value, func(ref string) string {
				return env[strings.TrimSuffix(strings.TrimPrefix(ref, "$("), ")")]
			})
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v, ok := secrets[ref.Name][ref.Key]
			if !ok {
				t.Fatalf("env %s: no Secret %s with key %s here", e.Name, ref.Name, ref.Key)
			}
			env[e.Name] = v
		default:
			t.Fatalf("env %s: unexpected valueFrom %+v", e.Name, e.ValueFrom)
		}
	}
	return env
}

// startService runs the service with exactly env, waits until it serves
// (or fails the test with what it printed when it exits instead), asks its
// /healthz, and stops it with SIGTERM as Kubernetes would.
func startService(t *testing.T, bin string, env map[string]string) {
	t.Helper()
	cmd := exec.Command(bin)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	drained := make(chan struct{})
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-drained // Wait closes the pipe: read it to the end first
		_ = cmd.Wait()
	}()
	// The JSON log line "serving" names the address; EOF means it exited.
	var printed strings.Builder
	addr := ""
	sc := bufio.NewScanner(io.TeeReader(stdout, &printed))
	for addr == "" && sc.Scan() {
		var line struct{ Msg, Addr string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "serving" {
			addr = line.Addr
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stdout); close(drained) }()
	if addr == "" {
		t.Fatalf("the service did not start on the rendered configuration:\n%s%s", printed.String(), stderr.String())
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %s", resp.Status)
	}
}
