package helmcheck

import (
	"strings"
	"testing"
)

const goodDeployment = `
# a comment-only document is skipped
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: fa
spec:
  replicas: 2
  selector:
    matchLabels: {app: fa}
  template:
    metadata:
      labels: {app: fa}
    spec:
      containers:
        - name: fa
          image: fa:latest
          ports: [{name: http, containerPort: 8080}]
          env:
            - {name: A, value: x}
            - {name: B, value: "$(A)/y"}
          readinessProbe:
            httpGet: {path: /readyz, port: http}
---
apiVersion: v1
kind: Service
metadata:
  name: fa
spec:
  selector: {app: fa}
  ports: [{name: http, port: 8080, targetPort: http}]
`

func TestDecodeStrictAcceptsGood(t *testing.T) {
	objs, err := DecodeStrict([]byte(goodDeployment))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].Kind != "Deployment" || objs[1].Kind != "Service" {
		t.Fatalf("got %+v", objs)
	}
	if err := Check(objs); err != nil {
		t.Fatal(err)
	}
}

// Each mistake is one edit of goodDeployment that the API server would
// silently drop or refuse, and that must fail here.
func TestDecodeStrictRefuses(t *testing.T) {
	for _, c := range []struct{ name, old, new, want string }{
		{"misspelled field", "  replicas: 2", "  replica: 2", `unknown field "spec.replica"`},
		{"field at the wrong level", "          readinessProbe:", "          readinessprobe:", `unknown field "spec.template.spec.containers[0].readinessprobe"`},
		{"duplicate key", "  replicas: 2", "  replicas: 2\n  replicas: 3", "already set"},
		{"wrong type", "  replicas: 2", "  replicas: two", "cannot unmarshal"},
		{"unknown kind", "kind: Service", "kind: Servce", "no official type"},
		{"no kind", "apiVersion: v1\nkind: Service\n", "", "no apiVersion and kind"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bad := strings.Replace(goodDeployment, c.old, c.new, 1)
			if bad == goodDeployment {
				t.Fatal("the edit changed nothing")
			}
			_, err := DecodeStrict([]byte(bad))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want an error with %q, got %v", c.want, err)
			}
		})
	}
}

func TestCheckRefuses(t *testing.T) {
	for _, c := range []struct{ name, old, new, want string }{
		{"service selects no pod", "  selector: {app: fa}\n  ports", "  selector: {app: other}\n  ports", "selects no pod"},
		{"probe on a missing port", "port: http}\n---", "port: metrics}\n---", "readiness probe on port metrics"},
		{"targetPort missing", "targetPort: http", "targetPort: web", "targetPort web is no container port"},
		{"variable defined after use", "value: \"$(A)/y\"", "value: \"$(C)/y\"", "refers to $(C)"},
		{"bad label", "labels: {app: fa}", "labels: {app: fa, bad: \"a b\"}", "labels"},
		{"bad name", "  name: fa\nspec:\n  replicas", "  name: FA\nspec:\n  replicas", "name:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bad := strings.Replace(goodDeployment, c.old, c.new, 1)
			if bad == goodDeployment {
				t.Fatal("the edit changed nothing")
			}
			objs, err := DecodeStrict([]byte(bad))
			if err != nil {
				t.Fatal(err)
			}
			err = Check(objs)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want an error with %q, got %v", c.want, err)
			}
		})
	}
}

func TestDecodeLoose(t *testing.T) {
	doc := "apiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata: {name: m}\nspec: {forwardAuth: {address: http://x/auth}}\n"
	if _, err := DecodeStrict([]byte(doc)); err == nil {
		t.Fatal("DecodeStrict took a kind it has no type for")
	}
	objs, err := DecodeLoose([]byte(doc), "traefik.io/v1alpha1")
	if err != nil || len(objs) != 1 || objs[0].Name != "m" {
		t.Fatalf("got %+v, %v", objs, err)
	}
	if _, err := DecodeLoose([]byte(doc+"spec: {}\n"), "traefik.io/v1alpha1"); err == nil {
		t.Fatal("a duplicate key was taken")
	}
}
