package launch

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
)

// ImageArtifact is one image the repository builds itself.
type ImageArtifact struct {
	// Image is the name the manifests use, e.g. "frontend".
	Image string `json:"image"`
	// Context is the build context: a root-relative folder ("." allowed), slash separated.
	Context string `json:"context"`
	// Dockerfile is relative to Context; "" means "Dockerfile".
	Dockerfile string `json:"dockerfile,omitempty"`
	// Target is the Dockerfile stage to build ("" builds the last one).
	Target string `json:"target,omitempty"`
	// BuildArgs are the build's --build-arg values.
	BuildArgs map[string]string `json:"buildArgs,omitempty"`
}

// DockerfilePath is the artifact's Dockerfile relative to its context.
func (a ImageArtifact) DockerfilePath() string {
	if a.Dockerfile == "" {
		return "Dockerfile"
	}
	return a.Dockerfile
}

// podSpecPaths are where objects keep a pod template: a Pod's spec, every workload's
// spec.template.spec (Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController,
// Job, and any custom kind shaped the same way) and a CronJob's job template.
var podSpecPaths = [][]string{
	{"spec", "template", "spec"},
	{"spec", "jobTemplate", "spec", "template", "spec"},
}

// RewriteImages replaces every container and initContainer image (Pod, Deployment,
// StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob's jobTemplate, and any
// object with spec.template.spec) whose repository equals an artifact's Image (with or without
// a tag or digest, as Skaffold matches) by tags[Image], and sets imagePullPolicy IfNotPresent on
// those containers only. It returns how many containers it changed. A pod spec whose
// containers are not a list of objects is an error naming the object.
func RewriteImages(objs []Object, tags map[string]string) (int, error) {
	if len(tags) == 0 {
		return 0, nil
	}
	byName := map[string]string{}
	for img, tag := range tags {
		byName[img] = tag
		if n := normalName(img); n != "" {
			byName[n] = tag
		}
	}
	changed := 0
	for _, obj := range objs {
		specs := make([]map[string]any, 0, 1)
		if obj.GetKind() == "Pod" && obj.GetAPIVersion() == "v1" {
			if s, ok := obj.Object["spec"].(map[string]any); ok {
				specs = append(specs, s)
			}
		}
		for _, p := range podSpecPaths {
			if s, ok := lookupMap(obj.Object, p); ok {
				specs = append(specs, s)
			}
		}
		for _, spec := range specs {
			for _, field := range []string{"initContainers", "containers"} {
				n, err := rewriteContainers(spec, field, byName)
				if err != nil {
					return changed, fmt.Errorf("%s %s (%s): %s: %w", obj.GetKind(), obj.GetName(), obj.Origin, field, err)
				}
				changed += n
			}
		}
	}
	return changed, nil
}

func rewriteContainers(spec map[string]any, field string, byName map[string]string) (int, error) {
	raw, ok := spec[field]
	if !ok || raw == nil {
		return 0, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return 0, fmt.Errorf("not a list: %w", ErrBadManifest)
	}
	n := 0
	for i, c := range list {
		m, ok := c.(map[string]any)
		if !ok {
			return n, fmt.Errorf("item %d is not an object: %w", i, ErrBadManifest)
		}
		img, _ := m["image"].(string)
		tag, ok := byName[repository(img)]
		if n := normalName(img); !ok && n != "" {
			tag, ok = byName[n]
		}
		if !ok || img == "" {
			continue
		}
		m["image"] = tag
		m["imagePullPolicy"] = "IfNotPresent"
		n++
	}
	return n, nil
}

// repository is an image reference without its tag and digest: "frontend:v1" → "frontend",
// "registry:5000/app@sha256:…" → "registry:5000/app".
func repository(img string) string {
	if i := strings.IndexByte(img, '@'); i >= 0 {
		img = img[:i]
	}
	if i := strings.LastIndexByte(img, ':'); i > strings.LastIndexByte(img, '/') {
		img = img[:i]
	}
	return img
}

// normalName is the fully qualified repository of an image reference ("frontend" →
// "docker.io/library/frontend"), so both spellings match; "" when it does not parse.
func normalName(img string) string {
	n, err := reference.ParseNormalizedNamed(img)
	if err != nil {
		return ""
	}
	return n.Name()
}

func lookupMap(obj map[string]any, path []string) (map[string]any, bool) {
	cur := obj
	for _, p := range path {
		next, ok := cur[p].(map[string]any)
		if !ok {
			return nil, false
		}
		cur = next
	}
	return cur, true
}
