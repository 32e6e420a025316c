package launch

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/versions"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
	archive "github.com/moby/go-archive"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// Limits of building a repository's images: what harmony sends to the engine and reads back.
const (
	// MaxContextSize caps one build context (the files sent to the engine).
	MaxContextSize = 2 << 30
	// MaxContextEntries caps the number of files and folders in one build context.
	MaxContextEntries = 1 << 20
	// MaxDockerfileSize caps a Dockerfile and a .dockerignore.
	MaxDockerfileSize = 1 << 20
	// MaxBuildOutput caps what one build may print; a build printing more is stopped.
	MaxBuildOutput = 32 << 20
	// BuildLogTail is how many of a failed build's last log lines its error carries.
	BuildLogTail = 20
)

var (
	// ErrBuild means an image could not be built.
	ErrBuild = errors.New("image build failed")
	// ErrNoBuilder means there is no Docker engine to build images with.
	ErrNoBuilder = errors.New("no image builder")
	// ErrContextChanged means a build context changed between planning and building.
	ErrContextChanged = errors.New("the build context changed while harmony built it")
)

// BuiltImage is an artifact's content-addressed tag and whether work is needed.
type BuiltImage struct {
	Artifact ImageArtifact `json:"artifact"`
	// Tag is "harmony.invalid/<image's path>:harmony-<first 16 hex digits of the context
	// digest>" (ImageTag).
	Tag string `json:"tag"`
	// Built: the engine already has Tag.
	Built bool `json:"built"`
	// Loaded: the runtime already has Tag.
	Loaded bool `json:"loaded"`
}

// ImageLoader is the runtime side: bootstrap's k3d and k3s image stores have this shape.
type ImageLoader interface {
	HasImages(ctx context.Context, tags []string) (map[string]bool, error)
	// LoadImages copies tags from the Docker engine into the runtime.
	LoadImages(ctx context.Context, tags []string) error
}

// ContextDigest hashes an artifact's build context, read through the project's confined view
// of root (nothing outside root is read, symbolic links are sent as links and never followed,
// a Dockerfile or .dockerignore must be a regular file inside root), minus what .dockerignore
// excludes, with its Dockerfile, target and build arguments. File contents, names, types, modes
// and link targets count; modification times and owners do not. It returns hex SHA-256.
func ContextDigest(root string, a ImageArtifact) (string, error) {
	bc, err := openContext(root, a)
	if err != nil {
		return "", err
	}
	defer bc.close()
	h := sha256.New()
	if err := bc.write(nil, h); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ImageHost is the registry host of every image harmony builds. It is under the top-level
// domain .invalid, which RFC 6761 reserves to never resolve: a node that lost a loaded image (the
// kubelet collected it, an import was lost) can only fail to pull it, never fetch an image
// someone else published under that name, and a launch imports it again.
const ImageHost = "harmony.invalid"

// ImageTag is the reference an artifact's image gets for a context digest:
// "harmony.invalid/<path>:harmony-<first 16 hex digits of the digest>", path being the artifact
// image's repository path without its registry host: frontend (or library/frontend) →
// harmony.invalid/frontend, acme/web → harmony.invalid/acme/web, registry.example/team/web →
// harmony.invalid/team/web, localhost:5000/web → harmony.invalid/web. The path is the image's
// own (never longer), so every valid image name gives a valid reference. Two artifacts whose
// paths are the same on different registries get the same reference only from the same build
// inputs, that is the same image, which BuildImages builds and loads once.
func ImageTag(a ImageArtifact, digest string) (string, error) {
	n, err := reference.ParseNormalizedNamed(a.Image)
	if err != nil {
		return "", fmt.Errorf("image %q: %w", a.Image, err)
	}
	if len(digest) < 16 {
		return "", fmt.Errorf("image %q: digest %q is too short", a.Image, digest)
	}
	p := reference.Path(n)
	if f := reference.FamiliarName(n); !strings.HasPrefix(f, reference.Domain(n)+"/") {
		p = f // a name of the default registry, as written without its host: frontend, not library/frontend
	}
	ref := ImageHost + "/" + p + ":harmony-" + digest[:16]
	if _, err := reference.ParseNamed(ref); err != nil {
		return "", fmt.Errorf("image %q: %s: %w", a.Image, ref, err)
	}
	return ref, nil
}

// PlanImages computes each artifact's tag and whether the engine (Built) and the runtime
// (Loaded) already have it. With docker nil both are false and nothing else is asked; with
// loader nil Loaded is false.
func PlanImages(ctx context.Context, root string, arts []ImageArtifact, docker client.APIClient, loader ImageLoader) ([]BuiltImage, error) {
	imgs := make([]BuiltImage, len(arts))
	errs := make([]error, len(arts))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.NumCPU())
	for i, a := range arts {
		imgs[i].Artifact = a
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			d, err := ContextDigest(root, a)
			if err == nil {
				imgs[i].Tag, err = ImageTag(a, d)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, hint.With(err, "nothing was applied: fix the image's build context and launch again")
	}
	if docker == nil {
		return imgs, nil
	}
	var tags []string
	for i := range imgs {
		_, err := docker.ImageInspect(ctx, imgs[i].Tag)
		switch {
		case err == nil:
			imgs[i].Built = true
		case !errdefs.IsNotFound(err):
			return nil, fmt.Errorf("ask the docker engine for %s: %w", imgs[i].Tag, err)
		}
		tags = append(tags, imgs[i].Tag)
	}
	if loader == nil {
		return imgs, nil
	}
	have, err := loader.HasImages(ctx, tags)
	if err != nil {
		return nil, fmt.Errorf("ask the runtime which images it has: %w", err)
	}
	for i := range imgs {
		// An image the engine no longer has is built again, and loaded again with it.
		imgs[i].Loaded = have[imgs[i].Tag] && imgs[i].Built
	}
	return imgs, nil
}

// Builder is the engine's builder an image is built with.
type Builder string

// Builders.
const (
	// BuilderAuto chooses once per launch: BuildKit when the engine has it (a Linux engine of
	// API 1.39 or later that does not recommend the classic builder), the classic builder
	// otherwise; DOCKER_BUILDKIT=0 or 1 decides instead, as it does for Docker's CLI. An engine
	// that refuses a BuildKit build gets the classic builder, once, visibly.
	BuilderAuto Builder = ""
	// BuilderBuildKit builds with BuildKit, the context sent in the request (no session).
	BuilderBuildKit Builder = "buildkit"
	// BuilderClassic builds with the engine's classic builder.
	BuilderClassic Builder = "classic"
)

// BuildKitEnv is Docker's switch between its builders: "0" (or another false value) means the
// classic builder, "1" BuildKit.
const BuildKitEnv = "DOCKER_BUILDKIT"

// BuildOptions say how BuildImages builds and loads.
type BuildOptions struct {
	// Docker is the engine that builds; nil when there is none.
	Docker client.APIClient
	// Loader loads the built images into the runtime; nil: they stay in the engine.
	Loader ImageLoader
	// Out receives a progress line per image (and per BuildKit or Dockerfile step).
	Out io.Writer
	// Builder is the builder to use; BuilderAuto chooses.
	Builder Builder
	// BuildKit, when set, builds instead of Docker: straight into the runtime's containerd, so
	// what it builds is loaded too (Docker and Loader are not used).
	BuildKit *BuildKitd
}

// BuildImages builds the images not Built (in parallel, up to the number of CPUs; a progress
// line per image on o.Out; a failed build's error ends with its log's last lines), then loads
// those not Loaded into the runtime. It marks imgs Built and Loaded as it goes. The builder is
// chosen once (see BuilderAuto); BuildKit gets the build context in the request, as the
// classic builder does, so no session is needed. Each image is tagged only once the context
// it was built from is known to hash to its tag.
func BuildImages(ctx context.Context, root string, imgs []BuiltImage, o BuildOptions) error {
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	w := &lockedWriter{w: out}
	docker, loader := o.Docker, o.Loader
	// Images of the same tag come from the same build inputs (ImageTag): built once.
	building := map[string]int{} // a tag → the image of imgs that builds it
	var todo []int
	for i := range imgs {
		if _, ok := building[imgs[i].Tag]; !ok && !imgs[i].Built {
			building[imgs[i].Tag] = i
			todo = append(todo, i)
		}
	}
	var bk *bkSession
	if o.BuildKit != nil {
		docker, loader = nil, nil // BuildKit builds where the images run
	}
	if len(todo) > 0 && o.BuildKit != nil {
		var err error
		if bk, err = o.BuildKit.connect(ctx); err != nil {
			return err
		}
		defer bk.close()
	}
	if len(todo) > 0 && docker == nil && bk == nil {
		return hint.With(fmt.Errorf("%w: %s must be built and there is no docker engine", ErrNoBuilder, imageCount(len(todo))),
			"install Docker Engine (your distribution's docker.io or docker-ce package) or Docker Desktop, start it, and launch again")
	}
	var sel *builderChoice
	if len(todo) > 0 && bk == nil {
		var err error
		if sel, err = chooseBuilder(ctx, docker, o.Builder, w); err != nil {
			return err
		}
	}
	errs := make([]error, len(imgs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.NumCPU())
	for _, i := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			a := imgs[i].Artifact
			fmt.Fprintf(w, "building %s from %s\n", a.Image, contextName(a))
			start := time.Now()
			step := func(s string) { fmt.Fprintf(w, "  %s: %s\n", a.Image, s) }
			var err error
			if bk != nil {
				err = bk.build(ctx, root, imgs[i], step)
			} else {
				b := sel.get()
				err = buildImage(ctx, root, imgs[i], docker, b, step)
				if sel.refused(b, err) {
					err = buildImage(ctx, root, imgs[i], docker, BuilderClassic, step)
				}
			}
			if err != nil {
				fmt.Fprintf(w, "failed %s after %s\n", a.Image, since(start))
				errs[i] = err
				return
			}
			imgs[i].Built = true
			imgs[i].Loaded = imgs[i].Loaded || bk != nil // built where it runs
			fmt.Fprintf(w, "built %s in %s\n", imgs[i].Tag, since(start))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return hint.With(err, "nothing was applied: fix the build and launch again")
	}
	for i := range imgs {
		if b, ok := building[imgs[i].Tag]; ok {
			imgs[i].Built = imgs[i].Built || imgs[b].Built
			imgs[i].Loaded = imgs[i].Loaded || (bk != nil && imgs[b].Loaded)
		}
	}
	if loader == nil {
		return nil
	}
	var load []string
	loading := map[string]bool{}
	for i := range imgs {
		if !imgs[i].Loaded && !loading[imgs[i].Tag] {
			loading[imgs[i].Tag] = true
			load = append(load, imgs[i].Tag)
		}
	}
	if len(load) == 0 {
		return nil
	}
	fmt.Fprintf(w, "loading %s into the runtime\n", strings.Join(load, ", "))
	start := time.Now()
	if err := loader.LoadImages(ctx, load); err != nil {
		return hint.With(err, "nothing was applied: is the runtime running? harmony runtime status")
	}
	for i := range imgs {
		imgs[i].Loaded = true
	}
	fmt.Fprintf(w, "loaded %s in %s\n", imageCount(len(load)), since(start))
	return nil
}

// builderChoice is the builder of one launch's builds: chosen once, switched to the classic
// builder once when the engine refuses BuildKit and the choice was harmony's.
type builderChoice struct {
	mu       sync.Mutex
	b        Builder
	fallback bool
	w        io.Writer
}

func (c *builderChoice) get() Builder {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b
}

// refused says whether a build with b failed because the engine refused BuildKit and should be
// tried again with the classic builder; the first such refusal says so on the progress output.
func (c *builderChoice) refused(b Builder, err error) bool {
	if b != BuilderBuildKit || !c.fallback || !errors.Is(err, errBuildKitRefused) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.b == BuilderBuildKit {
		c.b = BuilderClassic
		fmt.Fprintf(c.w, "%s: building with the classic builder\n", Sanitize(err.Error()))
	}
	return true
}

// errBuildKitRefused marks a BuildKit build the engine refused before it started.
var errBuildKitRefused = errors.New("the engine refused a BuildKit build")

// chooseBuilder settles the builder of a launch: want unless BuilderAuto; else DOCKER_BUILDKIT
// when set; else what the engine says of itself (see pickBuilder).
func chooseBuilder(ctx context.Context, docker client.APIClient, want Builder, w io.Writer) (*builderChoice, error) {
	switch want {
	case BuilderBuildKit, BuilderClassic:
		return &builderChoice{b: want, w: w}, nil
	case BuilderAuto:
	default:
		return nil, fmt.Errorf("builder %q: not %q or %q", want, BuilderBuildKit, BuilderClassic)
	}
	if b, err := builderFromEnv(os.Getenv(BuildKitEnv)); b != BuilderAuto || err != nil {
		return &builderChoice{b: b, w: w}, err
	}
	ping, err := docker.Ping(ctx)
	if err != nil {
		return nil, fmt.Errorf("ask the docker engine which builders it has: %w", err)
	}
	return &builderChoice{b: pickBuilder(ping), fallback: true, w: w}, nil
}

// builderFromEnv reads DOCKER_BUILDKIT as Docker's CLI does: unset or empty → BuilderAuto,
// a true value → BuildKit, a false one → the classic builder.
func builderFromEnv(v string) (Builder, error) {
	if v = strings.TrimSpace(v); v == "" {
		return BuilderAuto, nil
	}
	on, err := strconv.ParseBool(v)
	if err != nil {
		return BuilderAuto, hint.With(fmt.Errorf("%s %q is not a true or false value", BuildKitEnv, v),
			fmt.Sprintf("set %s=1 to build with BuildKit, %s=0 for the classic builder, or unset it to let harmony choose", BuildKitEnv, BuildKitEnv))
	}
	if on {
		return BuilderBuildKit, nil
	}
	return BuilderClassic, nil
}

// pickBuilder is BuildKit for an engine that has it: one that recommends it, or else a Linux
// engine of API 1.39 or later (where BuildKit left the experimental features) that does not
// recommend the classic builder.
func pickBuilder(ping types.Ping) Builder {
	switch {
	case ping.BuilderVersion == build.BuilderBuildKit:
		return BuilderBuildKit
	case ping.BuilderVersion == build.BuilderV1:
		return BuilderClassic
	case ping.OSType == "linux" && ping.APIVersion != "" && versions.GreaterThanOrEqualTo(ping.APIVersion, "1.39"):
		return BuilderBuildKit
	}
	return BuilderClassic
}

func imageCount(n int) string {
	if n == 1 {
		return "1 image"
	}
	return fmt.Sprintf("%d images", n)
}

func since(t time.Time) string { return time.Since(t).Round(100 * time.Millisecond).String() }

func contextName(a ImageArtifact) string {
	if a.Context == "" || a.Context == "." {
		return "the project root"
	}
	return Sanitize(a.Context) // a repository's text: never terminal controls
}

// buildImage builds one image, again (twice at most) when the classic builder lost the race below.
//
// The classic builder looks for a cached step of a FROM scratch stage among every image without a
// parent: it lists them, then reads each; one removed in between (by anything on the machine:
// another build's cleanup, `docker image prune`) fails the build with "unable to find image
// sha256:…" although nothing is wrong with it. A second try lists again.
func buildImage(ctx context.Context, root string, img BuiltImage, docker client.APIClient, b Builder, step func(string)) error {
	var err error
	for try := 0; try < 3; try++ {
		if err = buildImageOnce(ctx, root, img, docker, b, step); err == nil || !lostCacheRace(err) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// lostCacheRace tells the classic builder's cache-probe race (see buildImage) by its message.
func lostCacheRace(err error) bool {
	return errors.Is(err, ErrBuild) && strings.Contains(err.Error(), `unable to find image "sha256:`)
}

// buildImageOnce builds one image: the context streams to the engine while it is hashed; the
// image is tagged once the build succeeded and the hash matches the tag.
func buildImageOnce(ctx context.Context, root string, img BuiltImage, docker client.APIClient, b Builder, step func(string)) error {
	a := img.Artifact
	bc, err := openContext(root, a)
	if err != nil {
		return err
	}
	defer bc.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	h := sha256.New()
	written := make(chan error, 1)
	go func() {
		err := bc.write(pw, h)
		pw.CloseWithError(err)
		written <- err
	}()
	args := map[string]*string{}
	for k, v := range a.BuildArgs {
		args[k] = &v
	}
	version := build.BuilderV1
	if b == BuilderBuildKit {
		version = build.BuilderBuildKit
	}
	resp, err := docker.ImageBuild(ctx, pr, build.ImageBuildOptions{
		Dockerfile: bc.dockerfile, Target: a.Target, BuildArgs: args,
		Remove: true, ForceRemove: true, Version: version,
		Labels: map[string]string{"dev.harmony.image": a.Image},
	})
	if err != nil {
		pr.CloseWithError(err)
		if werr := <-written; werr != nil && !errors.Is(werr, err) {
			return fmt.Errorf("build %q: send the build context: %w", a.Image, werr)
		}
		if b == BuilderBuildKit && ctx.Err() == nil && (errdefs.IsInvalidParameter(err) || errdefs.IsNotImplemented(err)) {
			return fmt.Errorf("build %q: %w: %w: %w", a.Image, ErrBuild, errBuildKitRefused, err)
		}
		return fmt.Errorf("build %q: %w: %w", a.Image, ErrBuild, err)
	}
	id, tail, err := readBuild(resp.Body, step)
	resp.Body.Close()
	pr.CloseWithError(io.ErrClosedPipe)
	if werr := <-written; werr != nil && !errors.Is(werr, io.ErrClosedPipe) {
		return fmt.Errorf("build %q: send the build context: %w", a.Image, werr)
	}
	if err != nil {
		return fmt.Errorf("build %q: %w: %w%s", a.Image, ErrBuild, err, tailText(tail))
	}
	if id == "" {
		return fmt.Errorf("build %q: %w: the engine named no image%s", a.Image, ErrBuild, tailText(tail))
	}
	if want, got := img.Tag, mustTag(a, hex.EncodeToString(h.Sum(nil))); got != want {
		return hint.With(fmt.Errorf("build %q: %w (it hashes to %s now, not %s)", a.Image, ErrContextChanged, got, want), "launch again once the files stop changing")
	}
	if err := docker.ImageTag(ctx, id, img.Tag); err != nil {
		return fmt.Errorf("build %q: tag %s: %w", a.Image, img.Tag, err)
	}
	return nil
}

func mustTag(a ImageArtifact, digest string) string {
	t, _ := ImageTag(a, digest)
	return t
}

func tailText(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return "\nlast lines of the build log:\n  " + strings.Join(lines, "\n  ")
}

// capReader reads at most left bytes, then fails.
type capReader struct {
	r    io.Reader
	left int64
	over bool
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		c.over = true
		return 0, ErrTooLarge
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// buildContext is an artifact's build context, listed and checked, ready to be hashed and sent.
type buildContext struct {
	t       *tree
	name    string // the artifact's image, for errors
	dir     string // the context folder, root-relative with links resolved
	entries []contextEntry
	// dockerfile is the Dockerfile's name in the context sent; dockerfileData is set when the
	// Dockerfile is outside the context folder and is added to it under that name.
	dockerfile     string
	dockerfileData []byte
	digestHeader   string
	// sums, when not nil, receives each regular file's SHA-256 as write reads it (BuildKit's
	// session serves the files again and checks them against it).
	sums map[string][sha256.Size]byte
}

type contextEntry struct {
	rel  string // relative to the context, slash-separated
	info fs.FileInfo
	link string
}

// outsideDockerfile is the name a Dockerfile from outside the context is sent under.
const outsideDockerfile = ".harmony.Dockerfile"

// openContext lists an artifact's context: its folder and Dockerfile resolved inside root,
// .dockerignore applied, sizes checked against the caps before anything is read.
func openContext(root string, a ImageArtifact) (*buildContext, error) {
	t, err := openTree(root, MaxDockerfileSize, 0)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", a.Image, err)
	}
	bc := &buildContext{t: t, name: a.Image}
	if err := bc.list(a); err != nil {
		t.Close()
		return nil, fmt.Errorf("image %q: %w", a.Image, err)
	}
	return bc, nil
}

func (bc *buildContext) close() { bc.t.Close() }

func (bc *buildContext) list(a ImageArtifact) error {
	t := bc.t
	ctxName := path.Clean(filepath.ToSlash(a.Context))
	if ctxName == "" {
		ctxName = "."
	}
	if path.IsAbs(ctxName) || filepath.IsAbs(a.Context) {
		return fmt.Errorf("context %q: %w (contexts are folders of the project, relative to its root)", a.Context, ErrOutside)
	}
	dir, st, err := t.stat(ctxName)
	if err != nil {
		return fmt.Errorf("context %q: %w", a.Context, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("context %q is not a folder", a.Context)
	}
	bc.dir = dir

	// The Dockerfile: a regular file inside the project, read (and capped) here.
	dfName := path.Join(ctxName, filepath.ToSlash(a.DockerfilePath()))
	if path.IsAbs(filepath.ToSlash(a.DockerfilePath())) {
		return fmt.Errorf("dockerfile %q: %w (a Dockerfile is named relative to its context)", a.DockerfilePath(), ErrOutside)
	}
	dfRes, err := t.resolve(dfName)
	if errors.Is(err, fs.ErrNotExist) {
		return hint.With(fmt.Errorf("no Dockerfile at %q: %w", dfName, err),
			"write one there, or name another with dockerfile: (harmony.yaml images:) or docker.dockerfile (skaffold.yaml)")
	}
	if err != nil {
		return fmt.Errorf("dockerfile %q: %w", dfName, err)
	}
	df, err := t.readFile(dfRes)
	if err != nil {
		return fmt.Errorf("dockerfile: %w", err)
	}
	bc.dockerfile = outsideDockerfile
	if rel, ok := inside(dir, dfRes); ok {
		bc.dockerfile = rel
	} else {
		bc.dockerfileData = df
	}

	// .dockerignore at the context's root, as Docker reads it; the Dockerfile and the
	// .dockerignore are always sent, as Docker's CLI does.
	var excludes []string
	ignoreName := path.Join(dir, ".dockerignore")
	if _, _, err := t.stat(ignoreName); err == nil {
		b, err := t.readFile(ignoreName)
		if err != nil {
			return err
		}
		if excludes, err = ignorefile.ReadAll(strings.NewReader(string(b))); err != nil {
			return fmt.Errorf("read %q: %w", ignoreName, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	pm, err := patternmatcher.New(excludes)
	if err != nil {
		return fmt.Errorf("%q: %w", ignoreName, err)
	}
	for _, keep := range []string{".dockerignore", bc.dockerfile} {
		if m, _ := pm.MatchesOrParentMatches(keep); m {
			excludes = append(excludes, "!"+keep)
		}
	}
	if pm, err = patternmatcher.New(excludes); err != nil {
		return fmt.Errorf("%q: %w", ignoreName, err)
	}

	var total int64
	var parents []string
	var parentInfo []patternmatcher.MatchInfo
	err = fs.WalkDir(t.root.FS(), dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := inside(dir, p)
		if rel == "." {
			return nil
		}
		for len(parents) > 0 && !strings.HasPrefix(rel, parents[len(parents)-1]+"/") {
			parents, parentInfo = parents[:len(parents)-1], parentInfo[:len(parentInfo)-1]
		}
		var parent patternmatcher.MatchInfo
		if len(parentInfo) > 0 {
			parent = parentInfo[len(parentInfo)-1]
		}
		skip, info, err := pm.MatchesUsingParentResults(filepath.FromSlash(rel), parent)
		if err != nil {
			return err
		}
		if d.IsDir() {
			parents, parentInfo = append(parents, rel), append(parentInfo, info)
		}
		if skip {
			if d.IsDir() && !exclusionUnder(pm, rel) {
				return fs.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		e := contextEntry{rel: rel, info: fi}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			// Sent as a link, never followed: the engine resolves it inside the context.
			if e.link, err = t.root.Readlink(filepath.FromSlash(p)); err != nil {
				return err
			}
		case fi.Mode()&fs.ModeSocket != 0:
			return nil // as Docker: sockets are not sent
		case fi.Mode().IsRegular():
			total += fi.Size()
		}
		if total > MaxContextSize {
			return fmt.Errorf("context %q: more than %s: %w", a.Context, size(MaxContextSize), ErrTooLarge)
		}
		if len(bc.entries) >= MaxContextEntries {
			return fmt.Errorf("context %q: more than %d files and folders: %w", a.Context, MaxContextEntries, ErrTooLarge)
		}
		bc.entries = append(bc.entries, e)
		return nil
	})
	if err != nil {
		return hint.With(err, "exclude what the image does not need with a .dockerignore in the context folder")
	}

	// The arguments as a JSON object (keys sorted by encoding/json): {"A":"x=y"} and {"A=x":"y"}
	// are different builds and get different tags.
	hdr, _ := json.Marshal(struct {
		V          int               `json:"v"`
		Dockerfile string            `json:"dockerfile"`
		Target     string            `json:"target"`
		Args       map[string]string `json:"args"`
	}{2, bc.dockerfile, a.Target, a.BuildArgs})
	bc.digestHeader = string(hdr) + "\n"
	return nil
}

// exclusionUnder says whether a "!…" pattern may re-include something under the folder rel.
func exclusionUnder(pm *patternmatcher.PatternMatcher, rel string) bool {
	if !pm.Exclusions() {
		return false
	}
	for _, p := range pm.Patterns() {
		if p.Exclusion() && strings.HasPrefix(filepath.ToSlash(p.String())+"/", rel+"/") {
			return true
		}
	}
	return false
}

// inside returns p relative to the folder dir (both root-relative), when p is in it.
func inside(dir, p string) (string, bool) {
	if dir == "." {
		return p, !strings.HasPrefix(p, "../") && p != ".."
	}
	if p == dir {
		return ".", true
	}
	if strings.HasPrefix(p, dir+"/") {
		return strings.TrimPrefix(p, dir+"/"), true
	}
	return "", false
}

// write writes the context as a tar to out (nil: only hashed) and its canonical form to h: the
// same entries with modification times and owners left out, after the digest header.
func (bc *buildContext) write(out io.Writer, h io.Writer) error {
	if _, err := io.WriteString(h, bc.digestHeader); err != nil {
		return err
	}
	canon := tar.NewWriter(h)
	var tw *tar.Writer
	if out != nil {
		tw = tar.NewWriter(out)
	}
	put := func(hdr *tar.Header, content io.Reader) error {
		c := *hdr
		c.ModTime, c.AccessTime, c.ChangeTime = time.Unix(0, 0), time.Time{}, time.Time{}
		c.Uid, c.Gid, c.Uname, c.Gname = 0, 0, "", ""
		c.Format = tar.FormatPAX
		c.PAXRecords = nil
		if err := canon.WriteHeader(&c); err != nil {
			return err
		}
		dst := io.Writer(canon)
		if tw != nil {
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			dst = io.MultiWriter(canon, tw)
		}
		var fh hash.Hash
		if bc.sums != nil && hdr.Typeflag == tar.TypeReg {
			fh = sha256.New()
			dst = io.MultiWriter(dst, fh)
			defer func() { bc.sums[hdr.Name] = [sha256.Size]byte(fh.Sum(nil)) }()
		}
		if content == nil || hdr.Size == 0 {
			return nil
		}
		n, err := io.Copy(dst, io.LimitReader(content, hdr.Size))
		if err == nil && n < hdr.Size {
			err = fmt.Errorf("%q shrank while harmony read it", hdr.Name)
		}
		return err
	}
	for _, e := range bc.entries {
		hdr, err := archive.FileInfoHeader(e.rel, e.info, e.link)
		if err != nil {
			return err
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		if hdr.Typeflag != tar.TypeReg {
			if err := put(hdr, nil); err != nil {
				return err
			}
			continue
		}
		if err := bc.copyFile(e, hdr, put); err != nil {
			return err
		}
	}
	if bc.dockerfileData != nil {
		hdr := &tar.Header{Name: outsideDockerfile, Mode: 0o644, Size: int64(len(bc.dockerfileData)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if err := put(hdr, strings.NewReader(string(bc.dockerfileData))); err != nil {
			return err
		}
	}
	if tw != nil {
		if err := tw.Close(); err != nil {
			return err
		}
	}
	return canon.Close()
}

// copyFile sends one regular file, opened through the root (O_NONBLOCK: a file swapped for a
// FIFO does not block) and checked to be the regular file of the listing's size.
func (bc *buildContext) copyFile(e contextEntry, hdr *tar.Header, put func(*tar.Header, io.Reader) error) error {
	name := path.Join(bc.dir, e.rel)
	f, err := bc.t.root.OpenFile(filepath.FromSlash(name), os.O_RDONLY|openNonblock, 0)
	if err != nil {
		return fmt.Errorf("read %q: %w", name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("read %q: %w", name, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("read %q: %w (%s)", name, ErrNotRegular, fileType(st.Mode()))
	}
	if st.Size() != hdr.Size {
		return fmt.Errorf("read %q: it changed while harmony read the build context", name)
	}
	return put(hdr, f)
}
