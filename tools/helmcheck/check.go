package helmcheck

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Check finds what strict decoding cannot: objects that are each well formed
// but do not fit together (a selector that selects no pod, a probe on a port
// the container does not name, a mount of a missing volume), and names and
// labels the API server would refuse.
func Check(objs []Object) error {
	var errs []error
	fail := func(o Object, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s %q: %s", o.Kind, o.Name, fmt.Sprintf(format, args...)))
	}
	seen := map[string]bool{}
	var deps []*appsv1.Deployment
	var svcs []*corev1.Service
	for _, o := range objs {
		if seen[o.Kind+"/"+o.Name] {
			fail(o, "twice")
		}
		seen[o.Kind+"/"+o.Name] = true
		for _, msg := range validation.IsDNS1123Subdomain(o.Name) {
			fail(o, "name: %s", msg)
		}
		if m, ok := o.Value.(metav1.Object); ok {
			if err := validLabels(m.GetLabels()); err != nil {
				fail(o, "labels: %v", err)
			}
		}
		switch v := o.Value.(type) {
		case *appsv1.Deployment:
			deps = append(deps, v)
		case *corev1.Service:
			svcs = append(svcs, v)
		}
	}
	// Each selector below must select the pods of a Deployment in the set.
	podsOf := func(o Object, sel *metav1.LabelSelector) *appsv1.Deployment {
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			fail(o, "selector: %v", err)
			return nil
		}
		if s.Empty() {
			fail(o, "selector selects everything")
			return nil
		}
		for _, d := range deps {
			if s.Matches(labels.Set(d.Spec.Template.Labels)) {
				return d
			}
		}
		fail(o, "selector %s selects no pod of the Deployments here", s)
		return nil
	}
	for _, o := range objs {
		switch v := o.Value.(type) {
		case *appsv1.Deployment:
			if podsOf(o, v.Spec.Selector) != v {
				fail(o, "selector does not select its own pod template")
			}
			if err := validLabels(v.Spec.Template.Labels); err != nil {
				fail(o, "pod labels: %v", err)
			}
			for _, c := range v.Spec.Template.Spec.TopologySpreadConstraints {
				if c.LabelSelector == nil {
					fail(o, "topology spread on %s without labelSelector", c.TopologyKey)
				} else if podsOf(o, c.LabelSelector) != v {
					fail(o, "topology spread on %s does not select its pods", c.TopologyKey)
				}
			}
			if err := checkPod(v.Spec.Template.Spec); err != nil {
				fail(o, "%v", err)
			}
		case *corev1.Service:
			d := podsOf(o, &metav1.LabelSelector{MatchLabels: v.Spec.Selector})
			for _, p := range v.Spec.Ports {
				if d != nil && !hasPort(d.Spec.Template.Spec, p.TargetPort) {
					fail(o, "port %s: targetPort %s is no container port", p.Name, p.TargetPort.String())
				}
			}
		case *policyv1.PodDisruptionBudget:
			podsOf(o, v.Spec.Selector)
			if (v.Spec.MinAvailable == nil) == (v.Spec.MaxUnavailable == nil) {
				fail(o, "needs exactly one of minAvailable and maxUnavailable")
			}
		case *networkingv1.NetworkPolicy:
			d := podsOf(o, &v.Spec.PodSelector)
			for _, rule := range v.Spec.Ingress {
				if len(rule.From) == 0 {
					fail(o, "an ingress rule without from lets everybody in")
				}
				for _, p := range rule.Ports {
					if d != nil && p.Port != nil && !hasPort(d.Spec.Template.Spec, *p.Port) {
						fail(o, "port %s is no container port", p.Port.String())
					}
				}
				for i, peer := range rule.From {
					if peer.PodSelector == nil && peer.NamespaceSelector == nil && peer.IPBlock == nil {
						fail(o, "from[%d] is empty", i)
					}
				}
			}
		case *autoscalingv2.HorizontalPodAutoscaler:
			ref := v.Spec.ScaleTargetRef
			i := slices.IndexFunc(deps, func(d *appsv1.Deployment) bool { return d.Name == ref.Name })
			switch {
			case ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || i < 0:
				fail(o, "scales %s %s %q, not a Deployment here", ref.APIVersion, ref.Kind, ref.Name)
			case deps[i].Spec.Replicas != nil:
				fail(o, "its Deployment sets replicas, which would fight the autoscaler on every upgrade")
			}
			if v.Spec.MinReplicas != nil && *v.Spec.MinReplicas > v.Spec.MaxReplicas {
				fail(o, "minReplicas above maxReplicas")
			}
		case *monitoringv1.ServiceMonitor:
			s, err := metav1.LabelSelectorAsSelector(&v.Spec.Selector)
			if err != nil {
				fail(o, "selector: %v", err)
				break
			}
			i := slices.IndexFunc(svcs, func(svc *corev1.Service) bool { return s.Matches(labels.Set(svc.Labels)) })
			if i < 0 {
				fail(o, "selector %s selects no Service here", s)
				break
			}
			for _, ep := range v.Spec.Endpoints {
				if !slices.ContainsFunc(svcs[i].Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
					fail(o, "endpoint port %q is no port of Service %q", ep.Port, svcs[i].Name)
				}
			}
		}
	}
	return errors.Join(errs...)
}

var varRef = regexp.MustCompile(`\$\(([^)]*)\)`)

func checkPod(spec corev1.PodSpec) error {
	var errs []error
	volumes := map[string]bool{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = true
	}
	for _, c := range spec.Containers {
		defined := map[string]bool{}
		for _, e := range c.Env {
			for _, msg := range validation.IsEnvVarName(e.Name) {
				errs = append(errs, fmt.Errorf("container %s: env %q: %s", c.Name, e.Name, msg))
			}
			if defined[e.Name] {
				errs = append(errs, fmt.Errorf("container %s: env %s set twice", c.Name, e.Name))
			}
			// Kubernetes expands $(NAME) only from variables defined before.
			for _, m := range varRef.FindAllStringSubmatch(e.Value, -1) {
				if !defined[m[1]] {
					errs = append(errs, fmt.Errorf("container %s: env %s refers to $(%s), not defined before it", c.Name, e.Name, m[1]))
				}
			}
			defined[e.Name] = true
		}
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				errs = append(errs, fmt.Errorf("container %s: mounts volume %q, which the pod does not have", c.Name, m.Name))
			}
		}
		for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe} {
			if p != nil && p.HTTPGet != nil && !hasPort(spec, p.HTTPGet.Port) {
				errs = append(errs, fmt.Errorf("container %s: %s probe on port %s, which it does not have", c.Name, name, p.HTTPGet.Port.String()))
			}
		}
	}
	return errors.Join(errs...)
}

func hasPort(spec corev1.PodSpec, port intstr.IntOrString) bool {
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
				return true
			}
		}
	}
	return false
}

func validLabels(l map[string]string) error {
	var msgs []string
	for k, v := range l {
		for _, m := range validation.IsQualifiedName(k) {
			msgs = append(msgs, fmt.Sprintf("key %q: %s", k, m))
		}
		for _, m := range validation.IsValidLabelValue(v) {
			msgs = append(msgs, fmt.Sprintf("%s=%q: %s", k, v, m))
		}
	}
	if len(msgs) > 0 {
		slices.Sort(msgs)
		return errors.New(strings.Join(msgs, "; "))
	}
	return nil
}
