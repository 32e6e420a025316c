package launch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/moby/buildkit/identity"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/filesync"
	"github.com/tonistiigi/fsutil"
	fstypes "github.com/tonistiigi/fsutil/types"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// BuildKitHostEnv names a BuildKit daemon to build with instead of harmony's own, as buildctl
// reads it: unix:///path/to/buildkitd.sock (or tcp://…, npipe://…).
const BuildKitHostEnv = "BUILDKIT_HOST"

// K8sNamespace is containerd's namespace of Kubernetes' images, where the kubelet looks for
// them: a BuildKit daemon's containerd worker must store its images there.
const K8sNamespace = "k8s.io"

// BuildKit's worker labels harmony reads (github.com/moby/buildkit/worker/label).
const (
	bkLabelExecutor  = "org.mobyproject.buildkit.worker.executor"
	bkLabelNamespace = "org.mobyproject.buildkit.worker.containerd.namespace"
)

// ErrBuildKitWorker means a BuildKit daemon does not store its images where the kubelet runs them.
var ErrBuildKitWorker = errors.New("the BuildKit daemon does not build into the runtime's containerd")

// ImageLister says which images a runtime's image store already has (ImageLoader's HasImages).
type ImageLister interface {
	HasImages(ctx context.Context, tags []string) (map[string]bool, error)
}

// BuildKitd builds images with a BuildKit daemon whose containerd worker stores them in the
// runtime's own containerd, in the kubelet's namespace (k8s.io), unpacked: an image it built is
// where the kubelet runs it, with nothing to load. The build context goes through BuildKit's
// session (the Dockerfile frontend built into the daemon, dockerfile.v0), listed as the Docker
// path lists it (.dockerignore, the project's confined view, links sent as links) and checked
// against the digest its tag was planned from.
type BuildKitd struct {
	// Address is the daemon's: unix:///run/harmony/buildkit/buildkitd.sock, or BUILDKIT_HOST's.
	Address string
	// Store says which images the runtime's containerd has (nil: none is known, all are built).
	Store ImageLister
	// Name says which daemon it is, in progress lines and dry runs ("" → "buildkitd").
	Name string
}

// String is the builder's name as a dry run shows it.
func (b *BuildKitd) String() string {
	if b.Name != "" {
		return b.Name
	}
	return "buildkitd"
}

// PlanBuildKit computes each artifact's tag (PlanImages) and whether the runtime's store has it:
// with BuildKit an image is built where it runs, so Built and Loaded are the same answer.
func PlanBuildKit(ctx context.Context, root string, arts []ImageArtifact, store ImageLister) ([]BuiltImage, error) {
	imgs, err := PlanImages(ctx, root, arts, nil, nil)
	if err != nil || store == nil {
		return imgs, err
	}
	tags := make([]string, len(imgs))
	for i := range imgs {
		tags[i] = imgs[i].Tag
	}
	have, err := store.HasImages(ctx, tags)
	if err != nil {
		return nil, fmt.Errorf("ask the runtime which images it has: %w", err)
	}
	for i := range imgs {
		imgs[i].Built = have[imgs[i].Tag]
		imgs[i].Loaded = imgs[i].Built
	}
	return imgs, nil
}

// bkSession is one launch's connection to the daemon.
type bkSession struct {
	d    *BuildKitd
	conn *grpc.ClientConn
}

// dialBuildKit opens a gRPC connection to a BuildKit daemon's address: unix:///path, or
// tcp://host:port (an existing daemon BUILDKIT_HOST names; harmony's own listens on a socket).
func dialBuildKit(address string) (*grpc.ClientConn, error) {
	u, err := url.Parse(address)
	if err != nil {
		return nil, fmt.Errorf("BuildKit address %q: %w", address, err)
	}
	target := address
	switch u.Scheme {
	case "unix":
	case "tcp":
		target = "dns:///" + u.Host
	default:
		return nil, hint.With(fmt.Errorf("BuildKit address %q: harmony speaks to unix:// and tcp:// addresses only", address),
			"name the daemon's socket: "+BuildKitHostEnv+"=unix:///path/to/buildkitd.sock")
	}
	return grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20), grpc.MaxCallSendMsgSize(16<<20)))
}

// connect dials the daemon and checks that it builds into containerd's k8s.io namespace.
func (b *BuildKitd) connect(ctx context.Context) (*bkSession, error) {
	conn, err := dialBuildKit(b.Address)
	if err != nil {
		return nil, err
	}
	ws, err := listWorkers(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, hint.With(fmt.Errorf("%w: the BuildKit daemon at %s does not answer: %w", ErrNoBuilder, b.Address, err),
			"start it with: harmony runtime start", "or name a running daemon with "+BuildKitHostEnv+"=unix:///path/to/buildkitd.sock")
	}
	for _, w := range ws {
		if w.labels[bkLabelExecutor] == "containerd" && w.labels[bkLabelNamespace] == K8sNamespace {
			return &bkSession{d: b, conn: conn}, nil
		}
	}
	conn.Close()
	return nil, hint.With(fmt.Errorf("%w: the daemon at %s has no containerd worker in namespace %s", ErrBuildKitWorker, b.Address, K8sNamespace),
		"run buildkitd with --oci-worker=false --containerd-worker=true --containerd-worker-addr /run/k3s/containerd/containerd.sock --containerd-worker-namespace "+K8sNamespace,
		"or unset "+BuildKitHostEnv+" to use harmony's own")
}

func (s *bkSession) close() { s.conn.Close() }

// errOutputCap stops a build that printed more than MaxBuildOutput.
var errOutputCap = errors.New("the build printed too much")

// build builds one image with the daemon's Dockerfile frontend and stores it, unpacked, under
// img.Tag in the worker's containerd. The context is hashed first and must still hash to the
// tag; each file the daemon then asks for is checked against that hash as it is sent.
func (s *bkSession) build(ctx context.Context, root string, img BuiltImage, step func(string)) error {
	a := img.Artifact
	bc, err := openContext(root, a)
	if err != nil {
		return err
	}
	defer bc.close()
	bc.sums = map[string][sha256.Size]byte{}
	h := sha256.New()
	if err := bc.write(nil, h); err != nil {
		return fmt.Errorf("build %q: read the build context: %w", a.Image, err)
	}
	if got := mustTag(a, hex.EncodeToString(h.Sum(nil))); got != img.Tag {
		return hint.With(fmt.Errorf("build %q: %w (it hashes to %s now, not %s)", a.Image, ErrContextChanged, got, img.Tag), "launch again once the files stop changing")
	}
	cfs := &contextFS{bc: bc, byPath: map[string]*contextEntry{}}
	for i := range bc.entries {
		cfs.byPath[bc.entries[i].rel] = &bc.entries[i]
	}
	var dfs fsutil.FS = cfs
	if bc.dockerfileData != nil {
		dfs = &fileFS{name: outsideDockerfile, data: bc.dockerfileData}
	}
	attrs := map[string]string{"filename": bc.dockerfile, "label:dev.harmony.image": a.Image}
	if a.Target != "" {
		attrs["target"] = a.Target
	}
	for k, v := range a.BuildArgs {
		attrs["build-arg:"+k] = v
	}
	// The daemon keeps one copy of each context between builds (only what changed is sent
	// again): the key names the project's folder and the artifact's context.
	key := sha256.Sum256([]byte(root + "\x00" + a.Context))

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sess, err := session.NewSession(ctx, "harmony-"+hex.EncodeToString(key[:16]))
	if err != nil {
		return fmt.Errorf("build %q: %w", a.Image, err)
	}
	sess.Allow(filesync.NewFSSyncProvider(filesync.StaticDirSource{"context": cfs, "dockerfile": dfs}))
	go sess.Run(ctx, sessionDialer(s.conn)) //nolint:errcheck // it ends with the build
	defer sess.Close()

	ref := identity.NewID()
	bs := &buildStream{step: step}
	statusCtx, stopStatus := context.WithCancel(context.WithoutCancel(ctx))
	defer stopStatus()
	statusDone := make(chan struct{})
	go func() {
		defer close(statusDone)
		s.status(statusCtx, ref, bs, cancel)
	}()
	err = solve(ctx, s.conn, bkSolveRequest{ref: ref, session: sess.ID(), frontend: "dockerfile.v0", frontendAttrs: attrs,
		exporter: "image", exporterAttrs: map[string]string{"name": img.Tag, "unpack": "true"}})
	// The daemon ends the status stream once the build has; a stream that does not end soon
	// after (a daemon that went away) is stopped.
	select {
	case <-statusDone:
	case <-time.After(3 * time.Second):
		stopStatus()
		<-statusDone
	}
	if changed := cfs.changed.Load(); changed != nil {
		return hint.With(fmt.Errorf("build %q: %w", a.Image, *changed), "launch again once the files stop changing")
	}
	if err != nil {
		tail := bs.lines()
		if errors.Is(context.Cause(ctx), errOutputCap) {
			return fmt.Errorf("build %q: %w: the build printed more than %s: stopped%s", a.Image, ErrBuild, size(MaxBuildOutput), tailText(tail))
		}
		if ctx.Err() != nil {
			return fmt.Errorf("build %q: %w", a.Image, context.Cause(ctx))
		}
		return fmt.Errorf("build %q: %w: %w%s", a.Image, ErrBuild, bs.failure(bkMessage(err)), tailText(tail))
	}
	return nil
}

// status reads a build's progress into bs until the daemon ends it; a build printing more than
// MaxBuildOutput is cancelled.
func (s *bkSession) status(ctx context.Context, ref string, bs *buildStream, cancel context.CancelCauseFunc) {
	var printed int64
	_ = buildStatus(ctx, s.conn, ref, func(msg []byte) {
		decodeStatus(msg, bs.vertex, func(l bkLog) {
			if printed += int64(len(l.msg)); printed > MaxBuildOutput {
				cancel(errOutputCap)
				return
			}
			bs.log(l)
		})
	})
}

// bkMessage is a BuildKit error's message without the gRPC wrapping its client adds.
func bkMessage(err error) string {
	msg := err.Error()
	for _, p := range []string{"failed to solve: ", "rpc error: code = Unknown desc = "} {
		if i := strings.LastIndex(msg, p); i >= 0 {
			msg = msg[i+len(p):]
		}
	}
	return msg
}

// contextFS serves a listed build context to BuildKit's session (fsutil.FS): the listing's
// entries in its order (a folder's entries sorted by name, depth first, as fsutil walks), each
// regular file opened through the project's confined view and checked to be the file the
// context's digest was computed from.
type contextFS struct {
	bc      *buildContext
	byPath  map[string]*contextEntry
	changed atomic.Pointer[error]
}

func (f *contextFS) Walk(ctx context.Context, target string, fn fs.WalkDirFunc) error {
	target = strings.Trim(filepath.ToSlash(target), "/")
	if target == "." {
		target = ""
	}
	skip := "" // a folder (with its slash) whose remaining entries are skipped
	for i := range f.bc.entries {
		e := &f.bc.entries[i]
		if target != "" && e.rel != target && !strings.HasPrefix(e.rel, target+"/") {
			continue
		}
		if skip != "" && strings.HasPrefix(e.rel, skip) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		err := fn(filepath.FromSlash(e.rel), &fsutil.DirEntryInfo{Stat: statOf(e)}, nil)
		switch {
		case err == nil:
		case errors.Is(err, fs.SkipAll):
			return nil
		case errors.Is(err, fs.SkipDir) && e.info.IsDir():
			skip = e.rel + "/"
		case errors.Is(err, fs.SkipDir):
			dir := path.Dir(e.rel)
			if dir == "." {
				return nil
			}
			skip = dir + "/"
		default:
			return err
		}
	}
	return nil
}

// statOf is an entry as fsutil sends it: owners left out (as the Docker path sends them), the
// socket bit never set (sockets are not listed).
func statOf(e *contextEntry) *fstypes.Stat {
	st := &fstypes.Stat{
		Path:    filepath.FromSlash(e.rel),
		Mode:    uint32(e.info.Mode()),
		ModTime: e.info.ModTime().UnixNano(),
	}
	if !e.info.IsDir() {
		st.Size = e.info.Size()
	}
	if e.info.Mode()&fs.ModeSymlink != 0 {
		st.Linkname = e.link
	}
	return st
}

func (f *contextFS) Open(p string) (io.ReadCloser, error) {
	rel := filepath.ToSlash(p)
	e, ok := f.byPath[rel]
	if !ok || !e.info.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	want, ok := f.bc.sums[rel]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	name := path.Join(f.bc.dir, rel)
	file, err := f.bc.t.root.OpenFile(filepath.FromSlash(name), os.O_RDONLY|openNonblock, 0)
	if err != nil {
		return nil, f.fail(fmt.Errorf("read %q: %w", name, err))
	}
	st, err := file.Stat()
	switch {
	case err != nil:
		err = fmt.Errorf("read %q: %w", name, err)
	case !st.Mode().IsRegular():
		err = fmt.Errorf("read %q: %w: %w (%s)", name, ErrContextChanged, ErrNotRegular, fileType(st.Mode()))
	case st.Size() != e.info.Size():
		err = fmt.Errorf("read %q: %w", name, ErrContextChanged)
	}
	if err != nil {
		file.Close()
		return nil, f.fail(err)
	}
	return &checkedFile{f: f, file: file, r: io.LimitReader(file, e.info.Size()), h: sha256.New(), want: want, name: name}, nil
}

// fail records the first change found while the daemon read the context, and returns err.
func (f *contextFS) fail(err error) error {
	f.changed.CompareAndSwap(nil, &err)
	return err
}

// checkedFile is a context file as sent: at its end, its SHA-256 must be the one its digest had.
type checkedFile struct {
	f    *contextFS
	file *os.File
	r    io.Reader
	h    interface {
		io.Writer
		Sum([]byte) []byte
	}
	want [sha256.Size]byte
	name string
}

func (c *checkedFile) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	if errors.Is(err, io.EOF) && !bytes.Equal(c.h.Sum(nil), c.want[:]) {
		return n, c.f.fail(fmt.Errorf("read %q: %w", c.name, ErrContextChanged))
	}
	return n, err
}

func (c *checkedFile) Close() error { return c.file.Close() }

// fileFS is a folder of one file held in memory: a Dockerfile from outside the context.
type fileFS struct {
	name string
	data []byte
}

func (f *fileFS) Walk(ctx context.Context, target string, fn fs.WalkDirFunc) error {
	if target = strings.Trim(filepath.ToSlash(target), "/"); target != "" && target != "." && target != f.name {
		return nil // not there: fsutil's own walk of a missing target sees nothing either
	}
	st := &fstypes.Stat{Path: f.name, Mode: 0o644, Size: int64(len(f.data))}
	if err := fn(f.name, &fsutil.DirEntryInfo{Stat: st}, nil); err != nil && !errors.Is(err, fs.SkipDir) && !errors.Is(err, fs.SkipAll) {
		return err
	}
	return nil
}

func (f *fileFS) Open(p string) (io.ReadCloser, error) {
	if filepath.ToSlash(p) != f.name {
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	return io.NopCloser(bytes.NewReader(f.data)), nil
}
