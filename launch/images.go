package launch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"text/tabwriter"

	"github.com/distribution/reference"
	"github.com/docker/docker/client"

	"github.com/NationTech/harmony-agent/internal/hint"
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

// distinctImages refuses two artifacts building the same repository, however it is spelt
// (frontend, library/frontend): the manifests' references to it could run only one of them.
func distinctImages(arts []ImageArtifact) error {
	seen := map[string]string{}
	for _, a := range arts {
		key := normalName(a.Image)
		if key == "" {
			key = a.Image
		}
		switch prev, ok := seen[key]; {
		case ok && prev == a.Image:
			return fmt.Errorf("image %q is built by two artifacts", a.Image)
		case ok:
			return fmt.Errorf("images %q and %q are the same repository, built by two artifacts", prev, a.Image)
		}
		seen[key] = a.Image
	}
	return nil
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
	counts, err := rewriteCounting(objs, tags)
	n := 0
	for _, c := range counts {
		n += c
	}
	return n, err
}

// rewriteCounting is RewriteImages counting the containers changed per image of tags.
func rewriteCounting(objs []Object, tags map[string]string) (map[string]int, error) {
	counts := map[string]int{}
	if len(tags) == 0 {
		return counts, nil
	}
	byName := map[string]string{} // a spelling of an image's name → the image
	for img := range tags {
		byName[img] = img
		if n := normalName(img); n != "" {
			byName[n] = img
		}
	}
	for _, obj := range objs {
		for _, spec := range podSpecs(obj) {
			for _, field := range []string{"initContainers", "containers"} {
				if err := rewriteContainers(spec, field, byName, tags, counts); err != nil {
					return counts, fmt.Errorf("%s %s (%s): %s: %w", obj.GetKind(), obj.GetName(), obj.Origin, field, err)
				}
			}
		}
	}
	return counts, nil
}

// podSpecs are the pod specs of obj: a Pod's spec, and the templates at podSpecPaths.
func podSpecs(obj Object) []map[string]any {
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
	return specs
}

func rewriteContainers(spec map[string]any, field string, byName, tags map[string]string, counts map[string]int) error {
	raw, ok := spec[field]
	if !ok || raw == nil {
		return nil
	}
	list, ok := raw.([]any)
	if !ok {
		return fmt.Errorf("not a list: %w", ErrBadManifest)
	}
	for i, c := range list {
		m, ok := c.(map[string]any)
		if !ok {
			return fmt.Errorf("item %d is not an object: %w", i, ErrBadManifest)
		}
		img, _ := m["image"].(string)
		if img == "" {
			continue
		}
		name, ok := byName[repository(img)]
		if n := normalName(img); !ok && n != "" {
			name, ok = byName[n]
		}
		if !ok {
			continue
		}
		m["image"] = tags[name]
		m["imagePullPolicy"] = "IfNotPresent"
		counts[name]++
	}
	return nil
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

// ErrNoLoader means images must be loaded into a cluster harmony does not run.
var ErrNoLoader = errors.New("no way to load images into this cluster")

// ImageOptions say how a launch gets the images its project builds.
type ImageOptions struct {
	// Docker is the engine that builds them; nil when there is none (NoDocker says why).
	Docker client.APIClient
	// NoDocker is why there is no engine; its hints say what to install.
	NoDocker error
	// Loader loads them into the runtime; nil when there is none to load into (a dry run
	// without a cluster, or a cluster that is not harmony's runtime).
	Loader ImageLoader
	// DryRun plans only: nothing is built or loaded; the manifests still get the planned tags.
	DryRun bool
	// Out receives a progress line per image.
	Out io.Writer
	// Builder is the engine's builder (BuilderAuto: BuildKit when the engine has it).
	Builder Builder
	// BuildKit, when set, builds instead of Docker (the k3s runtime's builder): straight into
	// the runtime's containerd, so neither Docker nor Loader is needed.
	BuildKit *BuildKitd
}

// Image states, as a dry run and a report say them.
const (
	ImageCached     = "cached"
	ImageBuilt      = "built"
	ImageWouldBuild = "would build"
	ImageWouldLoad  = "built, would load"
	ImageNoBuilder  = "no builder: install Docker"
)

// The builders an image state names.
const (
	// BuilderDocker is the Docker engine; its images are then loaded into the runtime.
	BuilderDocker = "docker"
	// BuilderBuildKitd is a BuildKit daemon building into the runtime's containerd (k3s).
	BuilderBuildKitd = "buildkitd"
)

// ImageState is what a launch did (or would do) for one image the project builds.
type ImageState struct {
	Image      string `json:"image"`
	Context    string `json:"context"`
	Dockerfile string `json:"dockerfile"`
	Tag        string `json:"tag"`
	// Builder is what builds it: BuilderBuildKitd (k3s) or BuilderDocker (k3d, other clusters).
	Builder string `json:"builder"`
	State   string `json:"state"`
	// Built and Loaded say whether this launch built it and loaded it into the runtime.
	Built  bool `json:"built"`
	Loaded bool `json:"loaded"`
	// Containers is how many containers of the manifests now use it.
	Containers int `json:"containers"`
}

// PrepareImages gets the images src builds ready for objs: it plans them (a content hash of
// each build context is its tag), builds those the engine lacks and loads those the runtime
// lacks (not in a dry run), then rewrites objs to use them. Any failure (no engine, a build, a
// load) returns an error before anything is applied. objs must be every object and hook
// the launch applies.
func PrepareImages(ctx context.Context, src *Source, objs []Object, o ImageOptions) ([]ImageState, error) {
	if len(src.Images) == 0 {
		return nil, nil
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	loader, bk, builder := o.Loader, o.BuildKit, BuilderDocker
	var plan []BuiltImage
	var err error
	if bk != nil {
		builder = BuilderBuildKitd
		plan, err = PlanBuildKit(ctx, src.Root, src.Images, bk.Store)
	} else {
		plan, err = PlanImages(ctx, src.Root, src.Images, o.Docker, loader)
	}
	if err != nil {
		return nil, err
	}
	states := make([]ImageState, len(plan))
	tags := map[string]string{}
	var missing []string
	for i, b := range plan {
		a := b.Artifact
		states[i] = ImageState{Image: a.Image, Context: a.Context, Dockerfile: path.Join(a.Context, a.DockerfilePath()), Tag: b.Tag, Builder: builder}
		tags[a.Image] = b.Tag
		switch {
		case o.Docker == nil && bk == nil:
			states[i].State = ImageNoBuilder
		case !b.Built:
			states[i].State = ImageWouldBuild
		case !b.Loaded && o.Loader != nil && bk == nil:
			states[i].State = ImageWouldLoad
		default:
			states[i].State = ImageCached
		}
		if !b.Built {
			missing = append(missing, fmt.Sprintf("%s (from %s)", a.Image, a.Context))
		}
	}
	if !o.DryRun {
		switch {
		case bk != nil:
		case o.Docker == nil && len(missing) > 0:
			hints := append([]string{"nothing was applied: these images are built from the repository with Docker"}, hint.Of(o.NoDocker)...)
			if len(hints) == 1 {
				hints = append(hints, "install Docker Engine (your distribution's docker.io or docker-ce package) or Docker Desktop, start it, and launch again")
			}
			why := ""
			if o.NoDocker != nil {
				why = " (" + o.NoDocker.Error() + ")"
			}
			what := fmt.Sprintf("%d images to build", len(missing))
			if len(missing) == 1 {
				what = "1 image to build"
			}
			return states, hint.With(fmt.Errorf("%w%s: %s: %s", ErrNoBuilder, why, what, strings.Join(missing, ", ")), hints...)
		case o.Loader == nil:
			return states, hint.With(fmt.Errorf("%w: the project builds its images (%s) and harmony loads them only into its own runtime", ErrNoLoader, strings.Join(imageNames(plan), ", ")),
				"launch on harmony's runtime (drop --kubeconfig/--context), or push the images to a registry the cluster pulls from and name them in the manifests; nothing was applied")
		}
		before := append([]BuiltImage(nil), plan...)
		if err := BuildImages(ctx, src.Root, plan, BuildOptions{Docker: o.Docker, Loader: loader, Out: o.Out, Builder: o.Builder, BuildKit: bk}); err != nil {
			return states, err
		}
		for i := range plan {
			states[i].Built = !before[i].Built && plan[i].Built
			states[i].Loaded = !before[i].Loaded && plan[i].Loaded
			switch {
			case states[i].Built:
				states[i].State = ImageBuilt
			default:
				states[i].State = ImageCached
			}
		}
	}
	counts, err := rewriteCounting(objs, tags)
	if err != nil {
		return states, err
	}
	for i := range states {
		states[i].Containers = counts[states[i].Image]
	}
	return states, nil
}

func imageNames(plan []BuiltImage) []string {
	var out []string
	for _, b := range plan {
		out = append(out, b.Artifact.Image)
	}
	return out
}

// PrintImages writes one line per image: name, context, builder, state and tag.
func PrintImages(w io.Writer, imgs []ImageState) {
	if len(imgs) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tCONTEXT\tBUILDER\tSTATE\tTAG")
	for _, s := range imgs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", Sanitize(s.Image), Sanitize(s.Context), s.Builder, s.State, Sanitize(s.Tag))
	}
	_ = tw.Flush()
}
