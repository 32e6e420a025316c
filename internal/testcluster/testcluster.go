// Package testcluster gives tests a real Kubernetes control plane: kube-apiserver with etcd
// (started through controller-runtime's envtest), the real kube-controller-manager and
// kube-scheduler, and one simulated node whose pods go Running (simnode.go, a stand-in for a
// kubelet played in the test's own process), or (WithRealNode) a real node whose pods really
// run, all built from pinned Go modules by scripts/testenv. Start one per
// test package (in TestMain); each test takes its own namespace so tests can run in parallel.
package testcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"
)

// FailingImage is an image the simulated node can never pull: pods running it stay Pending with
// ErrImagePull and a Warning event.
const FailingImage = "registry.invalid/harmony/cannot-run:v1"

// NodeName is the simulated node's name.
const NodeName = "simulated-node-0"

// BuildCommand is what builds the binaries this package needs.
const BuildCommand = "scripts/testenv"

// Cluster is a running control plane.
type Cluster struct {
	// Config is an admin rest config.
	Config *rest.Config
	// Kubeconfig is the path of an admin kubeconfig file.
	Kubeconfig string
	// Client is a typed client for Config.
	Client *kubernetes.Clientset
	// StartupTime is how long the control plane took to be usable.
	StartupTime time.Duration

	// Node is the real node, in a cluster started with WithRealNode (else nil).
	Node *RealNode

	env   *envtest.Environment
	dir   string
	procs []*exec.Cmd
	sim   *simNode
	logs  []*os.File
}

// AssetsDir returns where scripts/testenv caches the binaries.
func AssetsDir() string {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "harmony-testenv", "v1.36.3")
}

// ErrMissingBinaries means scripts/testenv has not built the control plane.
var ErrMissingBinaries = errors.New("test control plane binaries are missing")

// Option changes what Start starts.
type Option func(*options)

type options struct{ realNode bool }

// WithRealNode gives the cluster a real node instead of the simulated one: the kubelet,
// containerd 2 and runc built by scripts/testenv, with Debian's CNI plugins (bridge, host-local,
// loopback, portmap) and a pause image built here. Its pods really run, answer probes and
// port-forwards; images reach it through its containerd (Cluster.Node). Linux and root only.
func WithRealNode() Option { return func(o *options) { o.realNode = true } }

// Start starts a control plane with one Ready node: the simulated one, or a real one
// (WithRealNode).
func Start(opts ...Option) (c *Cluster, err error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	started := time.Now()
	assets := AssetsDir()
	for _, bin := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		if _, err := os.Stat(filepath.Join(assets, bin)); err != nil {
			return nil, fmt.Errorf("%w: %s not in %s: run %s (it builds them once and caches them)", ErrMissingBinaries, bin, assets, BuildCommand)
		}
	}
	dir, err := os.MkdirTemp("", "harmony-testcluster-")
	if err != nil {
		return nil, err
	}
	c = &Cluster{dir: dir}
	// A failed start stops what did start (the named result is nil by then: keep our own).
	self := c
	defer func() {
		if err != nil {
			self.Stop()
		}
	}()
	// envtest logs through controller-runtime's logger; without one set it prints a stack trace
	// ("log.SetLogger(...) was never called") into every test run's output.
	crlog.SetLogger(logr.Discard())
	// The start returns once kube-apiserver answers; the bound only ends one that never does. Under
	// go test ./... two packages start a control plane at once, beside builds, on a 2-core machine.
	c.env = &envtest.Environment{BinaryAssetsDirectory: assets, ControlPlaneStartTimeout: 3 * time.Minute}
	c.env.ControlPlane.Etcd = &envtest.Etcd{}
	c.env.ControlPlane.Etcd.Configure().Append("unsafe-no-fsync", "true")
	// Room for many Services (benchmarks apply hundreds); k3s uses the same range.
	c.env.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", "10.96.0.0/12")
	// Logs, exec and port-forward reach a real node's kubelet at its address, not its name.
	c.env.ControlPlane.GetAPIServer().Configure().Set("kubelet-preferred-address-types", "InternalIP")
	if c.Config, err = c.env.Start(); err != nil {
		return nil, fmt.Errorf("start kube-apiserver and etcd: %w", err)
	}
	user, err := c.env.ControlPlane.AddUser(envtest.User{Name: "harmony-test-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, err
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return nil, err
	}
	c.Kubeconfig = filepath.Join(dir, "admin.kubeconfig")
	if err := os.WriteFile(c.Kubeconfig, kubeconfig, 0o600); err != nil {
		return nil, err
	}
	kc := "--kubeconfig=" + c.Kubeconfig
	components := [][]string{
		{"kube-controller-manager", kc, "--leader-elect=false", "--secure-port=0", "--controllers=*", "--use-service-account-credentials=false",
			"--concurrent-deployment-syncs=10", "--concurrent-replicaset-syncs=10", "--concurrent-gc-syncs=10"},
		{"kube-scheduler", kc, "--leader-elect=false", "--secure-port=0"},
	}
	for _, p := range components {
		if err := c.startProcess(filepath.Join(assets, p[0]), p[1:]...); err != nil {
			return nil, err
		}
	}
	if c.Client, err = kubernetes.NewForConfig(c.Config); err != nil {
		return nil, err
	}
	if o.realNode {
		if err := c.startRealNode(assets); err != nil {
			return nil, err
		}
	} else {
		log, err := os.Create(filepath.Join(c.dir, "simulated-node.log"))
		if err != nil {
			return nil, err
		}
		c.logs = append(c.logs, log)
		if c.sim, err = startSimNode(c.Client, log); err != nil {
			return nil, err
		}
	}
	c.StartupTime = time.Since(started)
	return c, nil
}

func (c *Cluster) startProcess(bin string, args ...string) error {
	name := filepath.Base(bin)
	log, err := os.Create(filepath.Join(c.dir, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	c.procs = append(c.procs, cmd)
	return nil
}

// LogTail returns the last n lines of a component's log (kube-controller-manager,
// kube-scheduler, simulated-node; a real node's kubelet and containerd).
func (c *Cluster) LogTail(component string, n int) string {
	b, _ := os.ReadFile(filepath.Join(c.dir, component+".log"))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Stop stops every component and removes the temporary files.
func (c *Cluster) Stop() {
	// The controllers first: a real node's pods, once deleted, must not be made again.
	for _, p := range c.procs {
		_ = p.Process.Kill()
		_, _ = p.Process.Wait()
	}
	if c.sim != nil {
		c.sim.stop()
	}
	if c.Node != nil {
		c.Node.stop(c)
	}
	if c.env != nil {
		_ = c.env.Stop()
	}
	for _, f := range c.logs {
		f.Close()
	}
	os.RemoveAll(c.dir)
}

// Kill ends every component within seconds, without the orderly stop: for a second interrupt
// while Stop runs. A real node's containers are killed, never left running.
func (c *Cluster) Kill() {
	for _, p := range c.procs {
		_ = p.Process.Kill()
	}
	if c.Node != nil {
		c.Node.kill()
	}
	if c.env != nil {
		done := make(chan struct{})
		go func() { _ = c.env.Stop(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
	}
	os.RemoveAll(c.dir)
}

var nsCounter atomic.Int64

// Namespace creates a fresh namespace for t and deletes it when t ends.
func (c *Cluster) Namespace(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d-%d", time.Now().UnixNano()%1_000_000, nsCounter.Add(1))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := c.Client.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

// Main runs a package's tests with a control plane in *cluster, and stops it afterwards. Under
// go test -short no control plane starts and Need skips, saying why; otherwise a missing binary
// fails every test that needs the cluster, with the command that builds it.
func Main(m *testing.M, cluster **Cluster, opts ...Option) int {
	if !testingShort() {
		c, err := Start(opts...)
		if err != nil {
			startErr = err
		} else {
			*cluster = c
			defer c.Stop()
		}
	}
	return m.Run()
}

var startErr error

// Need fails (or, under -short, skips) a test when the control plane is not running.
func Need(t testing.TB, c *Cluster) *Cluster {
	t.Helper()
	if c != nil {
		return c
	}
	if testing.Short() {
		t.Skip("needs the test control plane; skipped under -short")
	}
	t.Fatalf("test control plane: %v", startErr)
	return nil
}

func testingShort() bool {
	for _, a := range os.Args[1:] {
		if a == "-test.short" || a == "-test.short=true" {
			return true
		}
	}
	return false
}
