package helmcheck

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
)

const (
	chartDir  = "../../deploy/helm/authgear-forwardauth"
	ciDir     = "../../deploy/helm/ci"
	release   = "authgear-forwardauth"
	namespace = "authgear-forwardauth"
	endpoint  = "https://project.example"
)

// helmBin is the helm built by .ci/helm.sh. Without it the tests skip, or
// fail under FORWARDAUTH_E2E=required (set by .ci/run).
func helmBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("FORWARDAUTH_HELM"); p != "" {
		return p
	}
	msg := "no helm: set FORWARDAUTH_HELM to a helm binary (eval \"$(.ci/helm.sh --env)\" builds one)"
	if os.Getenv("FORWARDAUTH_E2E") == "required" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// runHelm runs helm with its own empty home, so that nothing of the
// machine's helm configuration (repositories, plugins) counts.
func runHelm(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	bin := helmBin(t)
	home := t.TempDir()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"KUBECONFIG="+filepath.Join(home, "no-kubeconfig"),
	)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

type rendered []Object

// render runs helm template, decodes every object strictly and checks that
// they fit together.
func render(t *testing.T, args ...string) rendered {
	t.Helper()
	out, stderr, err := runHelm(t, append([]string{"template", release, chartDir, "--namespace", namespace}, args...)...)
	if err != nil {
		t.Fatalf("helm template %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	objs, err := DecodeStrict([]byte(out))
	if err != nil {
		t.Fatalf("helm template %s: strict decoding: %v", strings.Join(args, " "), err)
	}
	if err := Check(objs); err != nil {
		t.Fatalf("helm template %s: %v", strings.Join(args, " "), err)
	}
	return objs
}

func (r rendered) kinds() []string {
	var k []string
	for _, o := range r {
		k = append(k, o.Kind)
	}
	slices.Sort(k)
	return k
}

// get returns the only object of type T, failing when there is none or more.
func get[T any](t *testing.T, r rendered) *T {
	t.Helper()
	var found []*T
	for _, o := range r {
		if v, ok := o.Value.(*T); ok {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one %T, got %d (objects: %v)", new(T), len(found), r.kinds())
	}
	return found[0]
}

func has[T any](r rendered) bool {
	return slices.ContainsFunc(r, func(o Object) bool { _, ok := o.Value.(*T); return ok })
}

func container(t *testing.T, r rendered) corev1.Container {
	t.Helper()
	d := get[appsv1.Deployment](t, r)
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(d.Spec.Template.Spec.Containers))
	}
	return d.Spec.Template.Spec.Containers[0]
}

// env returns the container's plain variables (value, not valueFrom).
func env(t *testing.T, r rendered) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, e := range container(t, r).Env {
		if e.ValueFrom == nil {
			m[e.Name] = e.Value
		}
	}
	return m
}

func envIndex(c corev1.Container, name string) int {
	return slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == name })
}

func values(name string) []string { return []string{"-f", filepath.Join(ciDir, name)} }

// cases are the rendered configurations: the defaults plus the one required
// value, and each values file under deploy/helm/ci/.
type chartCase struct {
	name  string
	args  []string
	check func(t *testing.T, r rendered)
}

var cases = []chartCase{
	{"defaults", []string{"--set", "authgear.endpoint=" + endpoint}, checkDefaults},
	{"redis-sentinel.yaml", values("redis-sentinel.yaml"), checkSentinel},
	{"assertions.yaml", values("assertions.yaml"), checkAssertions},
	{"hpa.yaml", values("hpa.yaml"), checkHPA},
	{"monitoring.yaml", values("monitoring.yaml"), checkMonitoring},
	{"all-settings.yaml", values("all-settings.yaml"), checkAllSettings},
}

func TestChartRenders(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.check(t, render(t, c.args...))
		})
	}
}

func TestChartLint(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, stderr, err := runHelm(t, append([]string{"lint", "--strict", chartDir}, c.args...)...)
			if err != nil || !strings.Contains(out, "0 chart(s) failed") {
				t.Fatalf("helm lint --strict: %v\n%s%s", err, out, stderr)
			}
		})
	}
}

// Every values file under deploy/helm/ci/ is one of the cases, so that a new
// example is checked, not only shipped.
func TestEveryValuesFileIsACase(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(ciDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no values files in %s: %v", ciDir, err)
	}
	for _, f := range files {
		if !slices.ContainsFunc(cases, func(c chartCase) bool { return c.name == filepath.Base(f) }) {
			t.Errorf("%s is not among the cases of TestChartRenders", f)
		}
	}
}

// Each file under deploy/helm/ci/invalid/ must be refused, by the schema or
// by the chart's own checks, with the words its first line gives.
func TestInvalidValuesFail(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(ciDir, "invalid", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no invalid values files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(data), "\n")
			want, ok := strings.CutPrefix(first, "# expect: ")
			if !ok {
				t.Fatalf("first line must be `# expect: <part of helm's error>`, is %q", first)
			}
			out, stderr, err := runHelm(t, "template", release, chartDir, "--namespace", namespace, "-f", f)
			if err == nil {
				t.Fatalf("helm template accepted it; rendered:\n%s", out)
			}
			if !strings.Contains(stderr, want) {
				t.Fatalf("helm template failed, but without %q:\n%s", want, stderr)
			}
		})
	}
	t.Run("no endpoint", func(t *testing.T) {
		_, stderr, err := runHelm(t, "template", release, chartDir)
		if err == nil || !strings.Contains(stderr, "missing property 'endpoint'") {
			t.Fatalf("want a schema error naming the missing endpoint, got %v:\n%s", err, stderr)
		}
	})
}

func checkDefaults(t *testing.T, r rendered) {
	if got, want := r.kinds(), []string{"Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"}; !slices.Equal(got, want) {
		t.Errorf("kinds: got %v, want %v", got, want)
	}
	d := get[appsv1.Deployment](t, r)
	if d.Name != release || d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("Deployment %q with replicas %v, want %q with 2", d.Name, d.Spec.Replicas, release)
	}
	// Only what was given: every other setting keeps the service's default.
	if got, want := env(t, r), map[string]string{"AUTHGEAR_ENDPOINT": endpoint, "LISTEN_ADDR": ":8080"}; !maps.Equal(got, want) {
		t.Errorf("env: got %v, want %v", got, want)
	}
	c := container(t, r)
	if len(c.EnvFrom) != 0 {
		t.Errorf("envFrom without any secret: %v", c.EnvFrom)
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"readiness", c.ReadinessProbe, "/readyz"}, {"liveness", c.LivenessProbe, "/healthz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.String() != "http" {
			t.Errorf("%s probe: got %+v, want GET %s on port http", p.name, p.probe, p.path)
		}
	}
	pod := d.Spec.Template.Spec
	sc := pod.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != 65532 {
		t.Errorf("pod securityContext: got %+v, want runAsNonRoot and the image's user 65532", sc)
	}
	csc := c.SecurityContext
	if csc == nil || csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem ||
		csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation ||
		csc.Capabilities == nil || !slices.Equal(csc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("container securityContext: got %+v", csc)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the service account token is mounted; the service never calls the API")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources: %+v", c.Resources)
	}
	if len(pod.TopologySpreadConstraints) == 0 {
		t.Error("no topology spread")
	}
	pdb := get[policyv1.PodDisruptionBudget](t, r)
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 {
		t.Errorf("PDB: %+v", pdb.Spec)
	}
	// Switched on with their default selectors: ingress-nginx and a
	// Prometheus in namespace monitoring.
	on := render(t, "--set", "authgear.endpoint="+endpoint, "--set", "networkPolicy.enabled=true", "--set", "serviceMonitor.enabled=true")
	get[monitoringv1.ServiceMonitor](t, on)
	if from := get[networkingv1.NetworkPolicy](t, on).Spec.Ingress[0].From; len(from) != 2 ||
		from[0].PodSelector.MatchLabels["app.kubernetes.io/name"] != "ingress-nginx" ||
		from[1].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "monitoring" {
		t.Errorf("default NetworkPolicy peers %+v", from)
	}
	// A single fixed replica gets no PDB: minAvailable 1 would block every drain.
	if has[policyv1.PodDisruptionBudget](render(t, "--set", "authgear.endpoint="+endpoint, "--set", "replicaCount=1")) {
		t.Error("a PodDisruptionBudget with replicaCount 1")
	}
}

func checkSentinel(t *testing.T, r rendered) {
	c := container(t, r)
	e := env(t, r)
	if e["REDIS_MODE"] != "sentinel" {
		t.Errorf("REDIS_MODE=%q", e["REDIS_MODE"])
	}
	// The password comes from the Redis chart's Secret, defined before
	// REDIS_URL so that Kubernetes expands $(REDIS_PASSWORD) in it.
	pw, url := envIndex(c, "REDIS_PASSWORD"), envIndex(c, "REDIS_URL")
	if pw < 0 || url < 0 || pw > url {
		t.Fatalf("REDIS_PASSWORD at %d, REDIS_URL at %d", pw, url)
	}
	ref := c.Env[pw].ValueFrom
	if ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "redis" || ref.SecretKeyRef.Key != "redis-password" {
		t.Errorf("REDIS_PASSWORD from %+v", ref)
	}
	// The user info is the sentinels' password, ?password= the master's.
	if want := "redis://:$(REDIS_PASSWORD)@redis-node-0.redis-headless:26379?master_name=mymaster&"; !strings.HasPrefix(e["REDIS_URL"], want) ||
		!strings.HasSuffix(e["REDIS_URL"], "&password=$(REDIS_PASSWORD)") {
		t.Errorf("REDIS_URL=%q, want it to start with %q and end with &password=$(REDIS_PASSWORD)", e["REDIS_URL"], want)
	}
	s := get[corev1.Secret](t, r)
	if got := slices.Sorted(maps.Keys(s.Data)); !slices.Equal(got, []string{"AUTHGEAR_WEBHOOK_SECRET", "CACHE_KEY_SECRET"}) {
		t.Errorf("Secret keys %v", got)
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef == nil || c.EnvFrom[0].SecretRef.Name != s.Name {
		t.Errorf("envFrom %+v, want the chart's Secret %q", c.EnvFrom, s.Name)
	}
	if get[appsv1.Deployment](t, r).Spec.Template.Annotations["checksum/secret"] == "" {
		t.Error("no checksum/secret annotation: pods would keep old secrets after an upgrade")
	}
	if v := *get[appsv1.Deployment](t, r).Spec.Replicas; v != 3 {
		t.Errorf("replicas %d", v)
	}
}

func checkAssertions(t *testing.T, r rendered) {
	if has[corev1.Secret](r) {
		t.Error("a Secret made by the chart, with secret.existingSecret set")
	}
	c := container(t, r)
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef == nil || c.EnvFrom[0].SecretRef.Name != "forwardauth-secrets" {
		t.Errorf("envFrom %+v, want the existing Secret", c.EnvFrom)
	}
	file := env(t, r)["ASSERTION_KEYS_FILE"]
	i := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return strings.HasPrefix(file, m.MountPath+"/") })
	if i < 0 || !c.VolumeMounts[i].ReadOnly {
		t.Fatalf("ASSERTION_KEYS_FILE=%q is in no read-only mount: %+v", file, c.VolumeMounts)
	}
	vols := get[appsv1.Deployment](t, r).Spec.Template.Spec.Volumes
	j := slices.IndexFunc(vols, func(v corev1.Volume) bool { return v.Name == c.VolumeMounts[i].Name })
	if j < 0 || vols[j].Secret == nil || vols[j].Secret.SecretName != "forwardauth-assertion-keys" {
		t.Errorf("the key file's volume is not the Secret: %+v", vols)
	}
}

func checkHPA(t *testing.T, r rendered) {
	h := get[autoscalingv2.HorizontalPodAutoscaler](t, r)
	if *h.Spec.MinReplicas != 3 || h.Spec.MaxReplicas != 12 || len(h.Spec.Metrics) != 2 {
		t.Errorf("HPA spec %+v", h.Spec)
	}
	if h.Spec.Behavior == nil || h.Spec.Behavior.ScaleDown == nil || *h.Spec.Behavior.ScaleDown.StabilizationWindowSeconds != 300 {
		t.Errorf("behavior %+v", h.Spec.Behavior)
	}
	// Check has made sure the Deployment sets no replicas.
	pdb := get[policyv1.PodDisruptionBudget](t, r)
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 || pdb.Spec.MinAvailable != nil {
		t.Errorf("PDB %+v, want maxUnavailable 1 only", pdb.Spec)
	}
}

func checkMonitoring(t *testing.T, r rendered) {
	sm := get[monitoringv1.ServiceMonitor](t, r)
	if sm.Labels["release"] != "kube-prometheus-stack" || len(sm.Spec.Endpoints) != 1 ||
		sm.Spec.Endpoints[0].Path != "/metrics" || sm.Spec.Endpoints[0].Interval != "15s" ||
		len(sm.Spec.Endpoints[0].MetricRelabelConfigs) != 1 {
		t.Errorf("ServiceMonitor %+v", sm)
	}
	if !slices.Equal(sm.Spec.NamespaceSelector.MatchNames, []string{namespace}) {
		t.Errorf("ServiceMonitor namespaceSelector %+v", sm.Spec.NamespaceSelector)
	}
	np := get[networkingv1.NetworkPolicy](t, r)
	if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) || len(np.Spec.Ingress) != 1 {
		t.Fatalf("NetworkPolicy %+v", np.Spec)
	}
	var from []string
	for _, p := range np.Spec.Ingress[0].From {
		if p.NamespaceSelector == nil || p.PodSelector == nil {
			t.Errorf("peer %+v: want both selectors", p)
			continue
		}
		from = append(from, p.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"]+"/"+p.PodSelector.MatchLabels["app.kubernetes.io/name"])
	}
	if want := []string{"traefik/traefik", "monitoring/prometheus"}; !slices.Equal(from, want) {
		t.Errorf("NetworkPolicy lets in %v, want %v", from, want)
	}
}

// allSettings is what all-settings.yaml must put into the container: each
// variable of config.go, through env or the chart's Secret.
var allSettings = map[string]string{
	"AUTHGEAR_ENDPOINT":       endpoint,
	"AUTHGEAR_RESOLVER_URL":   "http://authgear.authgear.svc.cluster.local:3001/_resolver/resolve",
	"AUTHGEAR_COOKIE_PREFIX":  "myapp_",
	"LISTEN_ADDR":             ":9090",
	"REDIS_URL":               "redis://redis-0.redis:6379?addr=redis-1.redis:6379&addr=redis-2.redis:6379",
	"REDIS_MODE":              "cluster",
	"REDIS_KEY_PREFIX":        "fa:",
	"REDIS_TIMEOUT":           "80ms",
	"CACHE_KEY_SECRET":        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	"CACHE_TTL":               "2m",
	"CACHE_NEGATIVE_TTL":      "3s",
	"LOCAL_CACHE_TTL":         "0s",
	"LOCAL_CACHE_SIZE":        "2000000",
	"RESOLVER_TIMEOUT":        "1500ms",
	"RESOLVER_MAX_CONCURRENT": "64",
	"RESOLVER_BREAK_AFTER":    "0",
	"RESOLVER_BREAK_COOLDOWN": "10s",
	"RESOLVER_CLIENT_RATE":    "50",
	"RESOLVER_CLIENT_BURST":   "200",
	"CREDENTIAL_SHAPES":       "any",
	"STALE_IF_ERROR":          "5m",
	"JWT_VERIFY":              "hybrid",
	"JWT_EXTRA_AUDIENCES":     "https://api.example.com,https://admin.example.com",
	"JWT_MAX_LIFETIME":        "2h",
	"AUTHGEAR_WEBHOOK_SECRET": "webhook-signing-secret",
	"ADMIN_TOKEN":             "admin-token-of-32-characters-xx",
	"TRUSTED_PROXIES":         "10.0.0.0/8,fd00::/8",
	"ALLOW_PREFLIGHT":         "false",
	"LOGIN_URL":               "https://project.example/login",
	"LOGIN_RETURN_HOSTS":      "app.example.com,*.example.com",
	"LOGIN_RETURN_PARAM":      "redirect_uri",
	"AUTHGEAR_CLIENT_ID":      "portal-client-id",
	"SIGNIN_STATE_SECRET":     "signin-state-secret-0123456789abcdef",
	"SIGNOUT_REDIRECT_URL":    "https://app.example.com/signed-out",
	"SIGNIN_CALLBACK_URL":     "https://app.example.com/_forwardauth/callback",
	"SIGNIN_STATE_TTL":        "10m",
	"ASSERTION_KEYS_FILE":     "/run/secrets/assertion/jwks.json",
	"ASSERTION_ISSUER":        "https://forwardauth.example.com",
	"ASSERTION_TTL":           "3m",
	"SHUTDOWN_TIMEOUT":        "20s",
	"LOG_LEVEL":               "debug",
}

func checkAllSettings(t *testing.T, r rendered) {
	got := env(t, r)
	s := get[corev1.Secret](t, r)
	for k, v := range s.Data {
		if _, dup := got[k]; dup {
			t.Errorf("%s both in env and in the Secret", k)
		}
		got[k] = string(v)
	}
	for k := range maps.Keys(allSettings) {
		if got[k] != allSettings[k] {
			t.Errorf("%s: got %q, want %q", k, got[k], allSettings[k])
		}
	}
	for k := range maps.Keys(got) {
		if _, ok := allSettings[k]; !ok {
			t.Errorf("%s=%q set, not expected", k, got[k])
		}
	}
	if p := container(t, r).Ports[0].ContainerPort; p != 9090 {
		t.Errorf("containerPort %d, want 9090 as LISTEN_ADDR says", p)
	}
}

// Every variable the service reads (config.go's envconfig tags) is set by
// all-settings.yaml, so none is out of reach of the chart's values.
func TestEveryVariableReachable(t *testing.T) {
	names, err := configVariables("../../config.go")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 20 {
		t.Fatalf("only %d variables read from config.go: %v", len(names), names)
	}
	for _, n := range names {
		if _, ok := allSettings[n]; !ok {
			t.Errorf("%s (config.go) cannot be set through the chart's values: add it to values.yaml, values.schema.json, "+
				"the settings in templates/_helpers.tpl, deploy/helm/ci/all-settings.yaml and allSettings here", n)
		}
	}
	for n := range allSettings {
		if !slices.Contains(names, n) {
			t.Errorf("%s is set by the chart but config.go does not read it", n)
		}
	}
}

// configVariables reads the names of the service's variables from the
// envconfig tags of its config struct.
func configVariables(path string) ([]string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var names []string
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok || ts.Name.Name != "config" {
			return true
		}
		for _, field := range ts.Type.(*ast.StructType).Fields.List {
			if field.Tag == nil {
				continue
			}
			tag, err := strconv.Unquote(field.Tag.Value)
			if err != nil {
				continue
			}
			if name := reflect.StructTag(tag).Get("envconfig"); name != "" {
				names = append(names, name)
			}
		}
		return false
	})
	return names, nil
}

// The install command README.md shows renders, with its own --set values.
func TestReadmeInstallCommand(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "helm install authgear-forwardauth deploy/helm/authgear-forwardauth")
	if !ok {
		t.Fatal("README.md shows no `helm install authgear-forwardauth deploy/helm/authgear-forwardauth`")
	}
	// The command goes on over lines ending in a backslash.
	var words []string
	for line := range strings.Lines(rest) {
		line = strings.TrimSpace(line)
		cont := strings.HasSuffix(line, "\\")
		words = append(words, strings.Fields(strings.TrimSuffix(line, "\\"))...)
		if !cont {
			break
		}
	}
	var args []string
	for i, w := range words {
		if w == "--set" && i+1 < len(words) {
			args = append(args, "--set", words[i+1])
		}
	}
	if len(args) == 0 {
		t.Fatalf("no --set in the README's command: %v", words)
	}
	c := container(t, render(t, args...))
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef == nil {
		t.Errorf("the README's command reads no Secret: %+v", c.EnvFrom)
	}
}
