package bootstrap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	k3dclient "github.com/k3d-io/k3d/v5/pkg/client"
	k3drt "github.com/k3d-io/k3d/v5/pkg/runtimes"
	k3dtypes "github.com/k3d-io/k3d/v5/pkg/types"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// ErrImageLoad means images could not be loaded into the runtime.
var ErrImageLoad = errors.New("could not load images into the runtime")

// containerd's namespace for Kubernetes' images, where the kubelet looks for them.
const k8sNamespace = "k8s.io"

// maxCtrOutput caps what harmony keeps of a ctr command's messages (their last bytes), and
// maxImageList the image list it reads.
const (
	maxCtrOutput = 64 << 10
	maxImageList = 16 << 20
)

// ImageStore loads images from the Docker engine into a runtime's containerd, without a
// registry: `docker save` (the Engine API's ImageSave) streamed into ctr's `images import -` in
// the k8s.io namespace (k3d's import into each node, or the pinned k3s's ctr). HasImages asks
// `ctr -n k8s.io images ls -q`. launch's ImageLoader is this shape.
type ImageStore interface {
	HasImages(ctx context.Context, tags []string) (map[string]bool, error)
	LoadImages(ctx context.Context, tags []string) error
}

// ImageStoreOf returns the image store of rt (k3d or k3s); docker is the engine the images are
// built in (k3d uses its own connection to the same engine).
func ImageStoreOf(ctx context.Context, rt Runtime, docker client.APIClient) (ImageStore, error) {
	switch r := rt.(type) {
	case *K3d:
		s, err := r.Images(ctx)
		if err != nil {
			return nil, err
		}
		return s, nil
	case *K3s:
		s, err := r.Images(ctx, docker)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	return nil, fmt.Errorf("%w: the %s runtime has no image store", ErrImageLoad, rt.Name())
}

// K3dImages is the k3d runtime's image store: every server and agent node of the cluster, through
// the k3d library's import in direct mode (ImageImportIntoClusterMulti: one `docker save` stream
// of the images, multiplexed into each node's `ctr image import --all-platforms -`). Neither
// k3d's tools container nor a registry is involved. HasImages asks each node's ctr.
type K3dImages struct {
	Docker client.APIClient
	// Cluster is the k3d cluster's name (K3dCluster).
	Cluster string
}

// Images returns the image store of harmony's k3d cluster.
func (k *K3d) Images(ctx context.Context) (*K3dImages, error) {
	e, err := k.docker(ctx)
	if err != nil {
		return nil, err
	}
	return &K3dImages{Docker: e.Client, Cluster: K3dCluster}, nil
}

// cluster returns the cluster as k3d finds it (ClusterGet) and its server and agent nodes, the
// ones holding images.
func (i *K3dImages) cluster(ctx context.Context) (*k3dtypes.Cluster, []*k3dtypes.Node, error) {
	quietK3d()
	c, err := k3dclient.ClusterGet(ctx, k3dRuntime, &k3dtypes.Cluster{Name: i.Cluster})
	if errors.Is(err, k3dclient.ClusterGetNoNodesFoundError) {
		return nil, nil, hint.With(fmt.Errorf("k3d cluster %q: %w: no node found", i.Cluster, ErrNotInstalled),
			"create it with: harmony bootstrap --runtime k3d")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("k3d cluster %q: %w", i.Cluster, err)
	}
	var nodes []*k3dtypes.Node
	for _, n := range c.Nodes {
		if n.Role == k3dtypes.ServerRole || n.Role == k3dtypes.AgentRole {
			nodes = append(nodes, n)
		}
	}
	if len(nodes) == 0 {
		return nil, nil, fmt.Errorf("k3d cluster %q has no server or agent node", i.Cluster)
	}
	return c, nodes, nil
}

// HasImages reports which tags every node's containerd has (a tag one node lacks is loaded again).
func (i *K3dImages) HasImages(ctx context.Context, tags []string) (map[string]bool, error) {
	_, nodes, err := i.cluster(ctx)
	if err != nil {
		return nil, err
	}
	var have map[string]bool
	for _, n := range nodes {
		out := &listBuffer{}
		if err := i.exec(ctx, n.Name, []string{"ctr", "-n", k8sNamespace, "images", "ls", "-q"}, nil, out); err != nil {
			return nil, fmt.Errorf("list the images of %s: %w", n.Name, err)
		}
		p := present(tags, out.String())
		if have == nil {
			have = p
		}
		for t, ok := range p {
			have[t] = have[t] && ok
		}
	}
	return have, nil
}

// LoadImages streams the tags out of the Docker engine into every node's containerd, through
// the k3d library; the runtime it hands k3d runs each node's ctr through harmony's exec
// (k3dImportRuntime).
func (i *K3dImages) LoadImages(ctx context.Context, tags []string) error {
	if len(tags) == 0 {
		return nil
	}
	what := strings.Join(tags, ", ")
	names := make([]string, len(tags))
	for n, t := range tags {
		// k3d skips the images the engine lacks and imports the others: none unless all are there.
		if _, err := i.Docker.ImageInspect(ctx, t); err != nil {
			return fmt.Errorf("%w: export %s from docker: %w", ErrImageLoad, t, err)
		}
		names[n] = t + notAFile
	}
	c, _, err := i.cluster(ctx)
	if err != nil {
		return fmt.Errorf("%w: import %s: %w", ErrImageLoad, what, err)
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rt := &k3dImportRuntime{Runtime: k3dRuntime, images: i, cancel: cancel, ended: make(chan struct{})}
	err = k3dclient.ImageImportIntoClusterMulti(ctx, rt, names, c, k3dtypes.ImageImportOpts{Mode: k3dtypes.ImportModeDirect})
	if err != nil {
		// k3d's errors keep only the text of the cause; the first failure keeps its chain.
		if first := rt.firstFailure(); first != nil {
			err = first
		}
		if perr := parent.Err(); perr != nil {
			err = perr // the caller's cancellation or deadline, which failed every node
		}
		return fmt.Errorf("%w: import %s into k3d cluster %q: %w", ErrImageLoad, what, i.Cluster, err)
	}
	return nil
}

// notAFile ends every image name harmony hands k3d's import, which reads a name that is a file
// of the current folder as an image archive (and "-" as standard input): no file name holds a
// NUL byte, so none is read, even one that a user who can write the current folder (a shared
// /tmp) drops there while the import runs. k3dImportRuntime lists and streams images under these
// names.
const notAFile = "\x00"

// k3dImportRuntime is k3d's Docker runtime with the parts of an import harmony does itself. The
// image list and stream come from harmony's connection to the engine the images were built in.
// Each node's ctr runs through harmony's exec rather than k3d's, which asks for a privileged
// exec (a node is privileged already, and engines that cannot apply capabilities refuse it),
// polls for the end every second, never ends the command's input, and leaves k3d's multiplexer
// writing into a pipe nobody reads when a node fails. Here every node's input is closed when its
// exec returns and half-closed once the stream has ended, the first failure (a node's or the
// stream's) cancels the others, so one failing node never leaves the import waiting, and a
// cancelled context ends every exec, even one whose ctr is stuck.
type k3dImportRuntime struct {
	k3drt.Runtime
	images *K3dImages
	cancel context.CancelFunc
	// ended is closed once the image stream has been read to its end: k3d has written all of it
	// into every node's pipe.
	ended   chan struct{}
	endOnce sync.Once
	mu      sync.Mutex
	first   error
}

func (r *k3dImportRuntime) fail(err error) {
	r.mu.Lock()
	if r.first == nil {
		r.first = err
	}
	r.mu.Unlock()
	r.cancel()
}

func (r *k3dImportRuntime) firstFailure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first
}

// GetImages lists the engine's tagged images, each name ending in notAFile.
func (r *k3dImportRuntime) GetImages(ctx context.Context) ([]string, error) {
	list, err := r.images.Docker.ImageList(ctx, image.ListOptions{})
	if err != nil {
		return nil, err
	}
	var tags []string
	for _, im := range list {
		for _, t := range im.RepoTags {
			tags = append(tags, t+notAFile)
		}
	}
	return tags, nil
}

// GetImageStream is `docker save` of the images (named as GetImages names them).
func (r *k3dImportRuntime) GetImageStream(ctx context.Context, names []string) (io.ReadCloser, error) {
	images := make([]string, len(names))
	for i, n := range names {
		images[i] = strings.TrimSuffix(n, notAFile)
	}
	rc, err := r.images.Docker.ImageSave(ctx, images)
	if err != nil {
		err = fmt.Errorf("export %s from docker: %w", strings.Join(images, ", "), err)
		r.fail(err)
		return nil, err
	}
	return &imageStream{ReadCloser: rc, rt: r}, nil
}

// imageStream tells its runtime when it has been read to its end, or failed. Its end is
// signalled only on a read returning no bytes: k3d has written everything before into the
// nodes' pipes by then.
type imageStream struct {
	io.ReadCloser
	rt  *k3dImportRuntime
	eof bool
}

func (s *imageStream) Read(p []byte) (int, error) {
	if s.eof {
		s.rt.endOnce.Do(func() { close(s.rt.ended) })
		return 0, io.EOF
	}
	n, err := s.ReadCloser.Read(p)
	switch {
	case errors.Is(err, io.EOF) && n > 0:
		s.eof = true // the caller has yet to write these bytes
		return n, nil
	case errors.Is(err, io.EOF):
		s.rt.endOnce.Do(func() { close(s.rt.ended) })
	case err != nil:
		s.rt.fail(fmt.Errorf("export the images from docker: %w", err))
	}
	return n, err
}

// ExecInNodeWithStdin runs cmd (k3d's `ctr image import --all-platforms -`) in node with stdin.
func (r *k3dImportRuntime) ExecInNodeWithStdin(ctx context.Context, node *k3dtypes.Node, cmd []string, stdin io.ReadCloser) error {
	in := &execInput{r: stdin}
	returned := make(chan struct{})
	defer close(returned)
	go func() {
		select {
		case <-r.ended:
			in.finish() // all of the stream is in the pipe: once read, ctr's input ends
		case <-returned:
		}
	}()
	if err := r.images.exec(ctx, node.Name, cmd, in, io.Discard); err != nil {
		err = fmt.Errorf("node %s: %w", node.Name, err)
		r.fail(err)
		return err
	}
	return nil
}

// exec runs cmd in the node container, with stdin when given (always closed on return); its
// standard output goes to out, the last bytes of its standard error into the error. The exec is
// unprivileged (a k3d node is privileged already) and ends when the command's output ends or ctx
// is done.
func (i *K3dImages) exec(ctx context.Context, node string, cmd []string, stdin *execInput, out io.Writer) error {
	if stdin != nil {
		defer stdin.finish()
	}
	ex, err := i.Docker.ContainerExecCreate(ctx, node, container.ExecOptions{
		Cmd: cmd, AttachStdin: stdin != nil, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return hint.With(err, "is the cluster running? harmony runtime start")
	}
	conn, err := i.Docker.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() }) // a cancelled exec stops waiting for its output
	defer stop()
	// Only a failure to read stdin's source matters: ctr may finish once it has read the whole
	// archive, before the copy's last write or close, which then fail harmlessly.
	copied := make(chan struct{})
	if stdin != nil {
		go func() {
			defer close(copied)
			_, _ = io.Copy(conn.Conn, stdin)
			_ = conn.CloseWrite()
		}()
	} else {
		close(copied)
	}
	tail := &tailBuffer{max: maxCtrOutput}
	_, rerr := stdcopy.StdCopy(out, tail, conn.Reader)
	conn.Close() // its output ended (or overflowed): a stdin copy it no longer reads stops
	if stdin != nil {
		stdin.finish() // and so does one waiting for input the command will not read
	}
	<-copied
	if err := ctx.Err(); err != nil {
		return err
	}
	if rerr != nil {
		return rerr
	}
	code, err := i.exitCode(ctx, ex.ID)
	switch {
	case err != nil:
		return err
	case code != 0:
		return fmt.Errorf("%s exited with %d: %s", strings.Join(cmd, " "), code, lastLines(tail.String(), 10))
	case stdin != nil && stdin.err != nil:
		return fmt.Errorf("stream the images: %w", stdin.err)
	}
	return nil
}

// exitCode waits (briefly: its output has ended) until the exec has exited and returns its code.
func (i *K3dImages) exitCode(ctx context.Context, id string) (int, error) {
	for {
		st, err := i.Docker.ContainerExecInspect(ctx, id)
		if err != nil {
			return 0, err
		}
		if !st.Running {
			return st.ExitCode, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// execInput is an exec's standard input. It remembers the error reading its source met (io.EOF
// aside) unless harmony ended the input itself: finish closes the source, which also ends a copy
// waiting for more (k3d never closes its end of a node's pipe).
type execInput struct {
	r        io.ReadCloser
	once     sync.Once
	finished atomic.Bool
	err      error // read once the copy has returned
}

func (e *execInput) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && !e.finished.Load() && e.err == nil {
		e.err = err
	}
	return n, err
}

func (e *execInput) finish() {
	e.once.Do(func() {
		e.finished.Store(true)
		_ = e.r.Close()
	})
}

// K3sImages is the k3s runtime's image store: the installed, pinned k3s binary's `ctr`, run as
// root (containerd's socket is root's) through sudo when harmony is not root, the way the other
// privileged commands are run: the user is told what runs and why first.
type K3sImages struct {
	Docker client.APIClient
	Paths  Paths
	// Out receives the note saying what runs through sudo.
	Out io.Writer
	// binary is the installed k3s (in the versioned layout, owned by root).
	binary string
	// direct: harmony is root, or HARMONY_ROOT moves the system (tests): no sudo.
	direct bool
}

// Images returns the image store of harmony's k3s, which must be installed. docker is the engine
// the images are built in.
func (k *K3s) Images(ctx context.Context, docker client.APIClient) (*K3sImages, error) {
	inst, err := k.Detect(ctx)
	if err != nil {
		return nil, err
	}
	if !inst.Installed {
		return nil, hint.With(fmt.Errorf("k3s: %w", ErrNotInstalled), "install it with: harmony bootstrap")
	}
	return &K3sImages{Docker: docker, Paths: k.Paths, Out: k.Out, binary: filepath.Join(k.Paths.VersionDir(inst.Version), "k3s"),
		direct: k.Paths.Prefixed() || isRoot()}, nil
}

// ContainerdSocket is k3s's containerd socket.
func (p Paths) ContainerdSocket() string { return p.at("/run/k3s/containerd/containerd.sock") }

// command returns the command line running the pinned k3s's ctr with args, through sudo when
// root is needed and harmony is not root, and whether sudo is used.
func (i *K3sImages) command(ctx context.Context, args ...string) (*exec.Cmd, bool, error) {
	argv := append([]string{i.binary, "ctr", "--address", i.Paths.ContainerdSocket(), "-n", k8sNamespace}, args...)
	if i.direct {
		return exec.CommandContext(ctx, argv[0], argv[1:]...), false, nil
	}
	sudo, err := exec.LookPath("sudo")
	if err != nil {
		return nil, false, hint.With(fmt.Errorf("%w: k3s's containerd needs root, and sudo is not available", ErrImageLoad),
			"run harmony as root", "or use k3s in Docker: harmony bootstrap --runtime k3d")
	}
	return exec.CommandContext(ctx, sudo, append([]string{"--"}, argv...)...), true, nil
}

// HasImages reports which tags k3s's containerd has.
func (i *K3sImages) HasImages(ctx context.Context, tags []string) (map[string]bool, error) {
	cmd, sudo, err := i.command(ctx, "images", "ls", "-q")
	if err != nil {
		return nil, err
	}
	if sudo {
		i.note(cmd, "list the images in k3s's containerd")
	}
	out := &listBuffer{}
	tail := &tailBuffer{max: maxCtrOutput}
	cmd.Stdout, cmd.Stderr = out, tail
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("list the images in k3s's containerd: %w: %s", err, lastLines(tail.String(), 10))
	}
	return present(tags, out.String()), nil
}

// LoadImages streams the tags out of the Docker engine into k3s's containerd.
func (i *K3sImages) LoadImages(ctx context.Context, tags []string) error {
	if len(tags) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd, sudo, err := i.command(ctx, importArgs...)
	if err != nil {
		return err
	}
	rc, err := i.Docker.ImageSave(ctx, tags)
	if err != nil {
		return fmt.Errorf("%w: export %s from docker: %w", ErrImageLoad, strings.Join(tags, ", "), err)
	}
	defer rc.Close()
	if sudo {
		i.note(cmd, "import images into k3s's containerd")
	}
	tail := &tailBuffer{max: maxCtrOutput}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = rc, tail, tail
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: import %s into k3s: %w: %s", ErrImageLoad, strings.Join(tags, ", "), err, lastLines(tail.String(), 10))
	}
	return nil
}

func (i *K3sImages) note(cmd *exec.Cmd, why string) {
	if i.Out != nil {
		fmt.Fprintf(i.Out, "harmony needs root to %s.\nRunning: %s\n", why, strings.Join(cmd.Args, " "))
	}
}

// importArgs are ctr's arguments importing a `docker save` stream from stdin, as k3d runs it.
var importArgs = []string{"images", "import", "--all-platforms", "-"}

// present maps each tag to whether `ctr images ls -q` listed it; containerd keeps fully
// qualified names (docker.io/library/frontend:x for frontend:x), as the kubelet looks them up.
func present(tags []string, listing string) map[string]bool {
	have := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(listing))
	for sc.Scan() {
		have[normalRef(strings.TrimSpace(sc.Text()))] = true
	}
	out := make(map[string]bool, len(tags))
	for _, t := range tags {
		out[t] = have[normalRef(t)]
	}
	return out
}

// normalRef is ref's fully qualified name, or ref itself when it is not a valid reference.
func normalRef(ref string) string {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return reference.TagNameOnly(n).String()
}

// listBuffer holds an image list, failing past maxImageList bytes.
type listBuffer struct{ bytes.Buffer }

func (l *listBuffer) Write(p []byte) (int, error) {
	if l.Len()+len(p) > maxImageList {
		return 0, fmt.Errorf("the runtime listed more than %d MiB of images", maxImageList>>20)
	}
	return l.Buffer.Write(p)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		return n, nil
	}
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return n, nil
}

func (t *tailBuffer) Bytes() []byte  { return t.buf }
func (t *tailBuffer) String() string { return string(t.buf) }

// lastLines returns the last n lines of s, trimmed, with control characters removed.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		lines[i] = strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
				return -1
			}
			return r
		}, l)
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}
