package launch_test

import (
	"context"
	"testing"

	"github.com/NationTech/harmony-agent/launch"
)

const workloads = `apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers: [{name: a, image: frontend}, {name: b, image: busybox:1.36}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  template:
    spec:
      initContainers: [{name: init, image: "frontend:latest", imagePullPolicy: Always}]
      containers: [{name: app, image: docker.io/library/backend}, {name: side, image: backend-extra}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: c}
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: job, image: "backend@sha256:0123456789012345678901234567890123456789012345678901234567890123"}]
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
spec:
  template:
    spec:
      containers: [{name: w, image: registry.local:5000/frontend}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
data: {image: frontend}
`

func TestRewriteImages(t *testing.T) {
	root := tree(t, map[string]string{"k8s/all.yaml": workloads})
	src, err := launch.Discover(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := launch.Render(context.Background(), src, launch.RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := launch.RewriteImages(objs, map[string]string{"frontend": "harmony.invalid/frontend:harmony-aaaa", "backend": "harmony.invalid/backend:harmony-bbbb"})
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Errorf("changed %d containers, want 4 (pod a, init, app, job)", n)
	}
	type want struct{ image, policy string }
	got := map[string]want{}
	for _, o := range objs {
		for _, path := range [][]string{{"spec"}, {"spec", "template", "spec"}, {"spec", "jobTemplate", "spec", "template", "spec"}} {
			spec := o.Object
			for _, p := range path {
				spec, _ = spec[p].(map[string]any)
			}
			for _, f := range []string{"initContainers", "containers"} {
				list, _ := spec[f].([]any)
				for _, c := range list {
					m := c.(map[string]any)
					pol, _ := m["imagePullPolicy"].(string)
					got[o.GetName()+"/"+m["name"].(string)] = want{m["image"].(string), pol}
				}
			}
		}
	}
	for name, w := range map[string]want{
		"p/a":    {"harmony.invalid/frontend:harmony-aaaa", "IfNotPresent"},
		"p/b":    {"busybox:1.36", ""},
		"d/init": {"harmony.invalid/frontend:harmony-aaaa", "IfNotPresent"},
		"d/app":  {"harmony.invalid/backend:harmony-bbbb", "IfNotPresent"},
		"d/side": {"backend-extra", ""},
		"c/job":  {"harmony.invalid/backend:harmony-bbbb", "IfNotPresent"},
		"w/w":    {"registry.local:5000/frontend", ""},
	} {
		if got[name] != w {
			t.Errorf("%s: got %+v, want %+v", name, got[name], w)
		}
	}
	for _, o := range objs {
		if o.GetKind() == "ConfigMap" && o.Object["data"].(map[string]any)["image"] != "frontend" {
			t.Errorf("a ConfigMap's data was rewritten: %v", o.Object["data"])
		}
	}
}

func TestRewriteImagesRefusesMalformedContainers(t *testing.T) {
	root := tree(t, map[string]string{"k8s/d.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {template: {spec: {containers: frontend}}}\n"})
	src, err := launch.Discover(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := launch.Render(context.Background(), src, launch.RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := launch.RewriteImages(objs, map[string]string{"frontend": "harmony.invalid/frontend:harmony-x"}); err == nil {
		t.Fatal("containers that are not a list: no error")
	}
}
