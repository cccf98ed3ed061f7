package helmcheck

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
)

// The namespace deploy/kubernetes/deployment.yaml's comment creates, which
// the gateways' auth URLs name.
const manifestNamespace = "authgear-forwardauth"

// manifests decodes every file of deploy/kubernetes/ strictly, and
// deploy/traefik/kubernetes-middleware.yaml loosely (Traefik's CRDs have no
// type in k8s.io/api), checking that the objects fit together.
func manifests(t *testing.T) rendered {
	t.Helper()
	files, err := filepath.Glob("../../deploy/kubernetes/*.yaml")
	if err != nil || len(files) < 4 {
		t.Fatalf("deploy/kubernetes/*.yaml: %v %v", files, err)
	}
	var all rendered
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := DecodeStrict(data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(objs) == 0 {
			t.Fatalf("%s: no object", f)
		}
		all = append(all, objs...)
	}
	data, err := os.ReadFile("../../deploy/traefik/kubernetes-middleware.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := DecodeLoose(data, "traefik.io/v1alpha1")
	if err != nil {
		t.Fatalf("kubernetes-middleware.yaml: %v", err)
	}
	all = append(all, objs...)
	if err := Check(all); err != nil {
		t.Fatal(err)
	}
	return all
}

func TestManifests(t *testing.T) {
	all := manifests(t)
	for _, kind := range []string{"ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "Ingress", "Middleware", "IngressRoute"} {
		if !slices.Contains(all.kinds(), kind) {
			t.Errorf("no %s among %v", kind, all.kinds())
		}
	}

	// The ConfigMap holds variables of the service, and the Deployment reads it.
	names, err := configVariables("../../config.go")
	if err != nil {
		t.Fatal(err)
	}
	// The service's ConfigMap (ingress-nginx.yaml has one of its own, the
	// headers of the auth request).
	var cm *corev1.ConfigMap
	for _, o := range all {
		if v, ok := o.Value.(*corev1.ConfigMap); ok && v.Name == manifestNamespace {
			cm = v
		}
	}
	if cm == nil {
		t.Fatalf("no ConfigMap %s among %v", manifestNamespace, all.kinds())
	}
	for k := range cm.Data {
		if !slices.Contains(names, k) {
			t.Errorf("ConfigMap key %s is no variable of config.go", k)
		}
	}
	c := container(t, all)
	if !slices.ContainsFunc(c.EnvFrom, func(e corev1.EnvFromSource) bool { return e.ConfigMapRef != nil && e.ConfigMapRef.Name == cm.Name }) {
		t.Errorf("the Deployment does not read ConfigMap %q", cm.Name)
	}

	// Every gateway's auth URL reaches the Service's /auth.
	svc := get[corev1.Service](t, all)
	wantHost := svc.Name + "." + manifestNamespace + ".svc.cluster.local:" + strconv.Itoa(int(svc.Spec.Ports[0].Port))
	authURLs := map[string]string{}
	forwardauthRoutes := 0
	for _, o := range all {
		switch v := o.Value.(type) {
		case *networkingv1.Ingress:
			if routesToService(v, svc) {
				// The service's own pages (/_forwardauth/), without the check.
				forwardauthRoutes++
				continue
			}
			authURLs["Ingress "+v.Name] = v.Annotations["nginx.ingress.kubernetes.io/auth-url"]
		case map[string]any:
			// (Other kinds of Middleware, such as a headers one, call nothing.)
			if fa, ok := v["spec"].(map[string]any)["forwardAuth"].(map[string]any); o.Kind == "Middleware" && ok {
				authURLs["Middleware "+o.Name], _ = fa["address"].(string)
			}
		}
	}
	if len(authURLs) < 3 {
		t.Errorf("auth URLs found: %v", authURLs)
	}
	for where, raw := range authURLs {
		u, err := url.Parse(raw)
		if err != nil || u.Host != wantHost || (u.Path != "/auth" && !strings.HasPrefix(u.Path, "/auth/")) {
			t.Errorf("%s: auth URL %q, want http://%s/auth", where, raw, wantHost)
		}
	}
	if forwardauthRoutes != 1 {
		t.Errorf("%d Ingresses route /_forwardauth/ to the Service, want 1", forwardauthRoutes)
	}
}

// routesToService reports whether the Ingress sends only /_forwardauth/, in
// the Service's namespace, to the Service's port, with no auth annotation:
// the sign-in pages, which the gateway must not check.
func routesToService(in *networkingv1.Ingress, svc *corev1.Service) bool {
	if in.Namespace != manifestNamespace || in.Annotations["nginx.ingress.kubernetes.io/auth-url"] != "" || len(in.Spec.Rules) == 0 {
		return false
	}
	for _, r := range in.Spec.Rules {
		if r.HTTP == nil || len(r.HTTP.Paths) != 1 {
			return false
		}
		p := r.HTTP.Paths[0]
		b := p.Backend.Service
		if p.Path != "/_forwardauth/" || b == nil || b.Name != svc.Name || b.Port.Number != svc.Spec.Ports[0].Port {
			return false
		}
	}
	return true
}

// deploy/kubernetes/ and the chart are two descriptions of one Deployment:
// the parts that keep the service safe and healthy must not drift apart.
func TestManifestsMatchChart(t *testing.T) {
	plain := manifests(t)
	chart := render(t, "--set", "authgear.endpoint="+endpoint)
	pd, cd := get[appsv1.Deployment](t, plain), get[appsv1.Deployment](t, chart)
	pc, cc := container(t, plain), container(t, chart)
	for _, f := range []struct {
		name        string
		plain, chrt any
	}{
		{"pod securityContext", pd.Spec.Template.Spec.SecurityContext, cd.Spec.Template.Spec.SecurityContext},
		{"automountServiceAccountToken", pd.Spec.Template.Spec.AutomountServiceAccountToken, cd.Spec.Template.Spec.AutomountServiceAccountToken},
		{"container securityContext", pc.SecurityContext, cc.SecurityContext},
		{"readinessProbe", pc.ReadinessProbe, cc.ReadinessProbe},
		{"livenessProbe", pc.LivenessProbe, cc.LivenessProbe},
		{"resources", pc.Resources, cc.Resources},
		{"ports", pc.Ports[0].ContainerPort, cc.Ports[0].ContainerPort},
		{"replicas", pd.Spec.Replicas, cd.Spec.Replicas},
		{"image repository", strings.Split(pc.Image, ":")[0], strings.Split(cc.Image, ":")[0]},
	} {
		if !equality.Semantic.DeepEqual(f.plain, f.chrt) {
			t.Errorf("%s: deploy/kubernetes has %s, the chart %s", f.name, show(f.plain), show(f.chrt))
		}
	}
	ps, cs := get[corev1.Service](t, plain), get[corev1.Service](t, chart)
	if ps.Spec.Ports[0].Port != cs.Spec.Ports[0].Port || ps.Spec.Ports[0].Name != cs.Spec.Ports[0].Name {
		t.Errorf("Service ports: %+v and %+v", ps.Spec.Ports, cs.Spec.Ports)
	}
	// The chart's default release name and namespace give the Service the
	// address the gateways' manifests call.
	if ps.Name != cs.Name {
		t.Errorf("Service name %q in deploy/kubernetes, %q from the chart", ps.Name, cs.Name)
	}
}

func show(v any) string {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && !rv.IsNil() {
		v = rv.Elem().Interface()
	}
	b, _ := json.Marshal(v)
	return string(b)
}
