// Package helmcheck checks the Helm chart in deploy/helm and the manifests in
// deploy/kubernetes: every object is decoded strictly into its official
// Kubernetes API type, so that a misspelled or misplaced field fails instead
// of being dropped by the API server. It is a module of its own, so that
// k8s.io/api stays out of the service's go.mod.
package helmcheck

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Object is one decoded document: Value is a pointer to its official type
// (*appsv1.Deployment, ...), or a map for a kind decoded loosely.
type Object struct {
	APIVersion string
	Kind       string
	Name       string
	Value      any
}

// types are the kinds the chart and the manifests may contain, by
// apiVersion and kind. The ServiceMonitor is the Prometheus Operator's own
// Go type, the same its CRD's schema is generated from.
var types = map[string]func() any{
	"v1 ConfigMap":                            func() any { return new(corev1.ConfigMap) },
	"v1 Secret":                               func() any { return new(corev1.Secret) },
	"v1 Service":                              func() any { return new(corev1.Service) },
	"v1 ServiceAccount":                       func() any { return new(corev1.ServiceAccount) },
	"apps/v1 Deployment":                      func() any { return new(appsv1.Deployment) },
	"policy/v1 PodDisruptionBudget":           func() any { return new(policyv1.PodDisruptionBudget) },
	"autoscaling/v2 HorizontalPodAutoscaler":  func() any { return new(autoscalingv2.HorizontalPodAutoscaler) },
	"networking.k8s.io/v1 NetworkPolicy":      func() any { return new(networkingv1.NetworkPolicy) },
	"networking.k8s.io/v1 Ingress":            func() any { return new(networkingv1.Ingress) },
	"monitoring.coreos.com/v1 ServiceMonitor": func() any { return new(monitoringv1.ServiceMonitor) },
}

// header is what every document is first read as, to pick its type.
type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
}

// DecodeStrict splits a YAML stream into documents and decodes each into its
// official type, refusing unknown fields, duplicate keys and kinds it has no
// type for. Empty documents (only comments) are skipped.
func DecodeStrict(stream []byte) ([]Object, error) {
	return decode(stream, nil)
}

// DecodeLoose is DecodeStrict for streams that also hold kinds without a
// type here (a CRD such as Traefik's Middleware): those, when their
// apiVersion is one of loose, are decoded into a map instead.
func DecodeLoose(stream []byte, loose ...string) ([]Object, error) {
	return decode(stream, loose)
}

func decode(stream []byte, loose []string) ([]Object, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	var out []Object
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		var h header
		if err := yaml.Unmarshal(doc, &h); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if h.APIVersion == "" && h.Kind == "" {
			if j, err := yaml.YAMLToJSON(doc); err == nil && string(bytes.TrimSpace(j)) == "null" {
				continue // only comments
			}
			return nil, fmt.Errorf("document %d: no apiVersion and kind", i)
		}
		o := Object{APIVersion: h.APIVersion, Kind: h.Kind, Name: h.Metadata.Name}
		if newValue, ok := types[h.APIVersion+" "+h.Kind]; ok {
			o.Value = newValue()
			if err := unmarshalStrict(doc, o.Value); err != nil {
				return nil, fmt.Errorf("%s %s %q: %w", h.APIVersion, h.Kind, h.Metadata.Name, err)
			}
		} else if slices.Contains(loose, h.APIVersion) {
			var m map[string]any
			if err := unmarshalStrict(doc, &m); err != nil {
				return nil, fmt.Errorf("%s %s %q: %w", h.APIVersion, h.Kind, h.Metadata.Name, err)
			}
			o.Value = m
		} else {
			return nil, fmt.Errorf("%s %s %q: no official type known for this kind", h.APIVersion, h.Kind, h.Metadata.Name)
		}
		out = append(out, o)
	}
}

// unmarshalStrict decodes one YAML document as the API server decodes JSON
// (sigs.k8s.io/json): field names match case-sensitively, so readinessprobe
// is not readinessProbe as encoding/json would have it, and an unknown or
// repeated field is an error naming its path.
func unmarshalStrict(doc []byte, v any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(j, v)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}
