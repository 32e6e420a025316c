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
	"time"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

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
// registry: `docker save` (the Engine API's ImageSave) streamed into `ctr -n k8s.io images
// import -`. HasImages asks `ctr -n k8s.io images ls -q`. launch's ImageLoader is this shape.
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

// K3dImages is the k3d runtime's image store: the node container's own ctr, through Docker
// exec. Neither k3d's tools container nor a registry is involved.
type K3dImages struct {
	Docker client.APIClient
	// Node is the node container (K3dNode).
	Node string
}

// Images returns the image store of harmony's k3d node.
func (k *K3d) Images(ctx context.Context) (*K3dImages, error) {
	e, err := k.docker(ctx)
	if err != nil {
		return nil, err
	}
	return &K3dImages{Docker: e.Client, Node: K3dNode}, nil
}

// HasImages reports which tags the node's containerd has.
func (i *K3dImages) HasImages(ctx context.Context, tags []string) (map[string]bool, error) {
	out := &listBuffer{}
	if err := i.exec(ctx, []string{"ctr", "-n", k8sNamespace, "images", "ls", "-q"}, nil, out); err != nil {
		return nil, fmt.Errorf("list the images of %s: %w", i.Node, err)
	}
	return present(tags, out.String()), nil
}

// LoadImages streams the tags out of the Docker engine into the node's containerd.
func (i *K3dImages) LoadImages(ctx context.Context, tags []string) error {
	if len(tags) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rc, err := i.Docker.ImageSave(ctx, tags)
	if err != nil {
		return fmt.Errorf("%w: export %s from docker: %w", ErrImageLoad, strings.Join(tags, ", "), err)
	}
	defer rc.Close()
	if err := i.exec(ctx, append([]string{"ctr", "-n", k8sNamespace}, importArgs...), rc, &tailBuffer{max: maxCtrOutput}); err != nil {
		return fmt.Errorf("%w: import %s into %s: %w", ErrImageLoad, strings.Join(tags, ", "), i.Node, err)
	}
	return nil
}

// exec runs cmd in the node, with stdin when given; its standard output goes to out, the last
// bytes of its standard error into the error.
func (i *K3dImages) exec(ctx context.Context, cmd []string, stdin io.Reader, out io.Writer) error {
	ex, err := i.Docker.ContainerExecCreate(ctx, i.Node, container.ExecOptions{
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
	// Only a failure to read stdin's source matters: ctr may finish once it has read the
	// whole archive, before the copy's last write or close, which then fail harmlessly.
	src := &sourceReader{r: stdin}
	copied := make(chan struct{})
	if stdin != nil {
		go func() {
			defer close(copied)
			_, _ = io.Copy(conn.Conn, src)
			_ = conn.CloseWrite()
		}()
	} else {
		close(copied)
	}
	tail := &tailBuffer{max: maxCtrOutput}
	_, rerr := stdcopy.StdCopy(out, tail, conn.Reader)
	conn.Close() // its output ended (or overflowed): a stdin copy it no longer reads stops
	<-copied
	if rerr != nil {
		return rerr
	}
	werr := src.err
	code, err := i.exitCode(ctx, ex.ID)
	switch {
	case err != nil:
		return err
	case code != 0:
		return fmt.Errorf("%s exited with %d: %s", strings.Join(cmd, " "), code, lastLines(tail.String(), 10))
	case werr != nil:
		return fmt.Errorf("stream the images: %w", werr)
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

// sourceReader remembers the error reading its source met (io.EOF aside).
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		s.err = err
	}
	return n, err
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
