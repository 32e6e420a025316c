package bootstrap

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/errdefs"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/docker/go-connections/nat"
	k3dclient "github.com/k3d-io/k3d/v5/pkg/client"
	k3dlog "github.com/k3d-io/k3d/v5/pkg/logger"
	k3drt "github.com/k3d-io/k3d/v5/pkg/runtimes"
	k3ddocker "github.com/k3d-io/k3d/v5/pkg/runtimes/docker"
	k3dtypes "github.com/k3d-io/k3d/v5/pkg/types"
	"github.com/k3d-io/k3d/v5/pkg/types/fixes"
	"github.com/sirupsen/logrus"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/NationTech/harmony-agent/installer"
	"github.com/NationTech/harmony-agent/internal/hint"
	"github.com/NationTech/harmony-agent/manifests"
)

// RegistryEnv names the registry that replaces the default one for the k3s node image (for
// example "registry.example.com/mirror"): the image counterpart of HARMONY_MIRROR. The image is
// still pulled by its pinned digest, so a registry serving other bytes is refused.
const RegistryEnv = "HARMONY_REGISTRY"

// The objects of harmony's k3d cluster. Names follow k3d's, so the k3d CLI sees the cluster.
const (
	K3dCluster    = "harmony"
	K3dNode       = "k3d-harmony-server-0"
	K3dNetwork    = "k3d-harmony"
	K3dVolume     = "k3d-harmony-data"
	k3sDataDir    = "/var/lib/rancher/k3s"
	k3sReadyLine  = "k3s is up and running"
	labelRuntime  = "dev.harmony.runtime"
	labelVersion  = "dev.harmony.k3s.version"
	labelImage    = "dev.harmony.k3s.image"
	labelHTTP     = "dev.harmony.port.http"
	labelHTTPS    = "dev.harmony.port.https"
	labelNetOwned = "dev.harmony.network.created"
)

// K3d runs k3s in Docker through the k3d library: one server node named k3d-harmony-server-0
// on the network k3d-harmony, its k3s data directory on the named volume k3d-harmony-data.
//
// harmony drives k3d's individual steps rather than ClusterRun, because ClusterRun also starts
// images harmony cannot pin (the k3d-tools container, to learn the host's address, and the
// k3d-proxy load balancer, useless with one server): network (CreateNetworkIfNotPresent), node
// (NodeCreate, which keeps k3d's entrypoint fixes for cgroup v2, DNS and mounts), start
// (NodeStart, which waits for the log line "k3s is up and running") and the kubeconfig (read
// where k3d reads it, GetKubeconfig, from the active node only). The host gateway comes from the
// network (Linux engines) and host.k3d.internal from Docker's host-gateway, so no tools
// container is needed.
type K3d struct {
	Trust    manifests.Trust
	Mirror   string
	Fetcher  *installer.Fetcher
	Out      io.Writer
	Progress Progress
	// Registry, when set, replaces the node image's registry (HARMONY_REGISTRY).
	Registry string
	// NoUpdateCheck skips fetching a newer signed runtime manifest before an install.
	NoUpdateCheck bool
	// GOOS picks the platform's hints.
	GOOS string
	// Home holds the switch journal and lock (the k3d runtime belongs to the user).
	Home string
	// PauseAt is the test-only pause of a switch (PauseEnv).
	PauseAt Phase

	engine *Engine
	rt     k3drt.Runtime
}

// NewK3d returns the k3d runtime with harmony's defaults.
func NewK3d(home string, trust manifests.Trust, out io.Writer, quiet bool) *K3d {
	f := installer.NewFetcher(home)
	f.Progress = installer.NewProgress(os.Stderr, quiet)
	f.OnRetry = installer.PrintRetries(os.Stderr, quiet)
	if quiet {
		out = io.Discard
	}
	quietK3d()
	return &K3d{
		Trust: trust, Mirror: installer.Mirror(), Fetcher: f, Out: out, Progress: LineProgress{W: out},
		Registry: os.Getenv(RegistryEnv), GOOS: runtime.GOOS, rt: k3dRuntime,
		Home: home, PauseAt: Phase(os.Getenv(PauseEnv)),
	}
}

var quietK3dOnce sync.Once

// quietK3d silences k3d's logger (logrus, to the terminal by default): harmony reports steps and
// errors itself, and only internal/cli prints.
func quietK3d() {
	quietK3dOnce.Do(func() {
		k3dlog.Log().SetOutput(io.Discard)
		k3dlog.Log().SetLevel(logrus.ErrorLevel)
	})
}

// Name is "k3d".
func (k *K3d) Name() string { return "k3d" }

// NeedsRoot is empty: the k3d runtime needs only the Docker engine.
func (k *K3d) NeedsRoot(string) string { return "" }

// docker connects to the engine once, diagnosing why it cannot when it cannot.
func (k *K3d) docker(ctx context.Context) (*Engine, error) {
	if k.engine != nil {
		return k.engine, nil
	}
	e, err := DiagnoseDocker(ctx)
	if err != nil {
		return nil, err
	}
	k.engine = e
	return e, nil
}

// nodeImage returns the pinned node image of rel: "<registry>/rancher/k3s@sha256:…".
func (k *K3d) nodeImage(rel manifests.Release) (string, error) {
	if _, err := rel.Image.Pinned(); err != nil {
		return "", hint.With(fmt.Errorf("k3s %s: %w", rel.Version, err),
			"harmony runs only images pinned by digest: pick a version that has one ('harmony runtime versions')")
	}
	repo, _, _ := strings.Cut(rel.Image.Ref, ":")
	if k.Registry != "" {
		repo = strings.TrimSuffix(k.Registry, "/") + "/" + repo
	}
	return repo + "@" + rel.Image.Digest, nil
}

// container returns harmony's node container, or nil when there is none.
func (k *K3d) container(ctx context.Context, name string) (*container.InspectResponse, error) {
	e, err := k.docker(ctx)
	if err != nil {
		return nil, err
	}
	c, err := e.Client.ContainerInspect(ctx, name)
	if errdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("inspect container %q: %w", name, err)
	}
	return &c, nil
}

// Detect finds harmony's node container.
func (k *K3d) Detect(ctx context.Context) (Installation, error) {
	c, err := k.container(ctx, K3dNode)
	if err != nil || c == nil {
		return Installation{}, err
	}
	if c.Config.Labels[labelRuntime] != "k3d" {
		return Installation{Foreign: fmt.Sprintf("a container named %s exists that harmony did not create", K3dNode)}, nil
	}
	return Installation{Installed: true, Version: c.Config.Labels[labelVersion]}, nil
}

func (k *K3d) foreignError(inst Installation) error {
	return hint.With(fmt.Errorf("%s: %w", inst.Foreign, ErrForeignInstall),
		"harmony never replaces a cluster it did not create: delete it (k3d cluster delete harmony) or use it as it is: harmony launch --context k3d-harmony")
}

// spec is what a node is created from; on an upgrade it is read back from the running node.
type spec struct {
	Version, Image               string
	APIPort, HTTPPort, HTTPSPort string
	Token                        string
	NetworkCreated               bool
}

func (s spec) node() *k3dtypes.Node {
	ports := nat.PortMap{
		"80/tcp":   {{HostIP: "127.0.0.1", HostPort: s.HTTPPort}},
		"443/tcp":  {{HostIP: "127.0.0.1", HostPort: s.HTTPSPort}},
		"6443/tcp": {{HostIP: "127.0.0.1", HostPort: s.APIPort}},
	}
	return &k3dtypes.Node{
		Name:  K3dNode,
		Role:  k3dtypes.ServerRole,
		Image: s.Image,
		// The data directory on a named volume survives the node (stop, upgrade, rollback).
		Volumes:  []string{K3dVolume + ":" + k3sDataDir},
		Env:      []string{"K3S_TOKEN=" + s.Token},
		Ports:    ports,
		Restart:  true,
		Networks: []string{K3dNetwork},
		// The host, as k3d names it, without k3d's tools container: Docker resolves it.
		ExtraHosts: []string{k3dtypes.DefaultK3dInternalHostRecord + ":host-gateway"},
		ServerOpts: k3dtypes.ServerOpts{KubeAPI: &k3dtypes.ExposureOpts{
			Host:        "127.0.0.1",
			PortMapping: nat.PortMapping{Port: k3dtypes.DefaultAPIPort + "/tcp", Binding: nat.PortBinding{HostIP: "127.0.0.1", HostPort: s.APIPort}},
		}},
		RuntimeLabels: map[string]string{
			k3dtypes.LabelClusterName:     K3dCluster,
			k3dtypes.LabelClusterToken:    s.Token,
			k3dtypes.LabelNetwork:         K3dNetwork,
			k3dtypes.LabelNetworkExternal: strconv.FormatBool(!s.NetworkCreated),
			labelRuntime:                  "k3d",
			labelVersion:                  s.Version,
			labelImage:                    s.Image,
			labelHTTP:                     s.HTTPPort,
			labelHTTPS:                    s.HTTPSPort,
			labelNetOwned:                 strconv.FormatBool(s.NetworkCreated),
		},
	}
}

// specOf reads the spec back from an existing node container.
func specOf(c *container.InspectResponse) spec {
	l := c.Config.Labels
	return spec{
		Version: l[labelVersion], Image: l[labelImage], APIPort: l[k3dtypes.LabelServerAPIPort],
		HTTPPort: l[labelHTTP], HTTPSPort: l[labelHTTPS], Token: l[k3dtypes.LabelClusterToken],
		NetworkCreated: l[labelNetOwned] == "true",
	}
}

// freePort returns a free TCP port on localhost.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// manifest returns the newest trusted manifest (see K3s.manifest).
func (k *K3d) manifest(ctx context.Context) (*manifests.Manifest, error) {
	ks := &K3s{Trust: k.Trust, Fetcher: k.Fetcher, Mirror: k.Mirror, Out: k.Out, NoUpdateCheck: k.NoUpdateCheck}
	return ks.manifest(ctx)
}

// Install creates (or starts) harmony's k3d cluster and merges its kubeconfig.
func (k *K3d) Install(ctx context.Context, opts InstallOptions) (Result, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Expose != nil && *opts.Expose {
		return Result{}, hint.With(fmt.Errorf("--expose: %w", ErrExposeK3d),
			"k3d publishes the cluster's API, HTTP and HTTPS on 127.0.0.1 only, and harmony has no switch to change that")
	}
	if _, err := k.docker(ctx); err != nil {
		return Result{}, err
	}
	inst, err := k.Detect(ctx)
	if err != nil {
		return Result{}, err
	}
	if inst.Foreign != "" {
		return Result{}, k.foreignError(inst)
	}
	if opts.Airgap {
		return Result{}, hint.With(fmt.Errorf("--airgap with k3d: the k3s node image tarball: %w: no digest of an image tarball is pinned in this manifest", manifests.ErrDigestUnknown),
			"harmony never loads unverified bytes: bootstrap without --airgap (the image is pulled by its pinned digest), or use --runtime k3s on Linux")
	}
	if inst.Installed {
		if opts.Version != "" && opts.Version != inst.Version {
			return Result{}, hint.With(fmt.Errorf("k3s %s runs in k3d; %s was asked for", inst.Version, opts.Version),
				"harmony bootstrap never changes an installed version: upgrades come with 'harmony runtime upgrade'",
				"to start over: harmony runtime uninstall, then harmony bootstrap --runtime k3d --version "+opts.Version)
		}
		if opts.HTTPPort != "" || opts.HTTPSPort != "" {
			c, err := k.container(ctx, K3dNode)
			if err != nil {
				return Result{}, err
			}
			if s := specOf(c); (opts.HTTPPort != "" && opts.HTTPPort != s.HTTPPort) || (opts.HTTPSPort != "" && opts.HTTPSPort != s.HTTPSPort) {
				return Result{}, hint.With(fmt.Errorf("the k3d cluster serves HTTP on %s and HTTPS on %s; other ports were asked for", s.HTTPPort, s.HTTPSPort),
					"ports are chosen when the cluster is created: harmony runtime uninstall, then bootstrap again with the new ports")
			}
		}
		if k.healthy(ctx) {
			target, err := k.mergeKubeconfig(ctx, opts.SwitchContext)
			return Result{Version: inst.Version, AlreadyHealthy: true, Kubeconfig: target}, err
		}
		fmt.Fprintf(k.Out, "k3s %s in k3d is created but not serving: starting it\n", inst.Version)
		if err := RunSteps(ctx, k.startSteps(opts.Timeout), k.Progress); err != nil {
			return Result{}, err
		}
		target, err := k.mergeKubeconfig(ctx, opts.SwitchContext)
		return Result{Version: inst.Version, Kubeconfig: target}, err
	}

	m, err := k.manifest(ctx)
	if err != nil {
		return Result{}, err
	}
	rel := m.DefaultRelease()
	if opts.Version != "" {
		if rel, err = m.Release(opts.Version); err != nil {
			return Result{}, hint.With(err, "run 'harmony runtime versions' for the pinned versions")
		}
	}
	img, err := k.nodeImage(rel)
	if err != nil {
		return Result{}, err
	}
	s := spec{Version: rel.Version.String(), Image: img, HTTPPort: opts.HTTPPort, HTTPSPort: opts.HTTPSPort, Token: randomToken()}
	if s.HTTPPort == "" {
		s.HTTPPort = "80"
	}
	if s.HTTPSPort == "" {
		s.HTTPSPort = "443"
	}
	if s.APIPort, err = freePort(); err != nil {
		return Result{}, err
	}
	steps := []Step{
		{Name: "pull", Run: func(ctx context.Context) error { return k.pull(ctx, img) }},
		{Name: "network", Run: func(ctx context.Context) error {
			created, err := k.ensureNetwork(ctx)
			s.NetworkCreated = created
			return err
		}, Undo: func(ctx context.Context) error {
			if s.NetworkCreated {
				return k.rt.DeleteNetwork(ctx, K3dNetwork)
			}
			return nil
		}},
		{Name: "volume", Run: func(ctx context.Context) error { return k.ensureVolume(ctx) }, Undo: func(ctx context.Context) error {
			return k.engine.Client.VolumeRemove(ctx, K3dVolume, false)
		}},
		{Name: "node", Run: func(ctx context.Context) error { return k.createNode(ctx, s) }, Undo: func(ctx context.Context) error {
			return k.removeContainer(ctx, K3dNode)
		}},
	}
	steps = append(steps, k.startSteps(opts.Timeout)...)
	if err := RunSteps(ctx, steps, k.Progress); err != nil {
		return Result{}, err
	}
	target, err := k.mergeKubeconfig(ctx, opts.SwitchContext)
	if err != nil {
		return Result{}, fmt.Errorf("kubeconfig: %w", err)
	}
	return Result{Version: s.Version, Kubeconfig: target}, nil
}

// pull pulls the node image by digest unless it is already here under that digest, then checks
// that Docker knows it under exactly that digest.
func (k *K3d) pull(ctx context.Context, ref string) error {
	c := k.engine.Client
	if _, err := c.ImageInspect(ctx, ref); err == nil {
		return nil
	}
	rc, err := c.ImagePull(ctx, ref, image.PullOptions{})
	if err == nil {
		err = jsonmessage.DisplayJSONMessagesStream(rc, io.Discard, 0, false, nil)
		rc.Close()
	}
	if err != nil {
		return hint.With(fmt.Errorf("pull %s: %w", ref, err),
			"harmony pulls the k3s image only by its pinned digest: a registry that has no image with that digest, or serves other bytes, is refused",
			"behind a company registry, set "+RegistryEnv+" to its address (it must serve the same image, same digest)")
	}
	if _, err := c.ImageInspect(ctx, ref); err != nil {
		return fmt.Errorf("pulled %s, but docker does not know it by that digest: %w", ref, err)
	}
	return nil
}

// ensureNetwork creates k3d-harmony unless it exists; it reports whether it created it.
func (k *K3d) ensureNetwork(ctx context.Context) (bool, error) {
	_, exists, err := k.rt.CreateNetworkIfNotPresent(ctx, &k3dtypes.ClusterNetwork{Name: K3dNetwork})
	if err != nil {
		return false, fmt.Errorf("create network %q: %w", K3dNetwork, err)
	}
	return !exists, nil
}

func (k *K3d) ensureVolume(ctx context.Context) error {
	c := k.engine.Client
	v, err := c.VolumeInspect(ctx, K3dVolume)
	if err == nil {
		if v.Labels[labelRuntime] != "k3d" {
			return hint.With(fmt.Errorf("a volume named %s exists that harmony did not create", K3dVolume), "remove or rename it: harmony never writes into a volume it does not own")
		}
		return nil // kept by an earlier uninstall without --purge: the cluster's state comes back
	}
	if !errdefs.IsNotFound(err) {
		return fmt.Errorf("inspect volume %q: %w", K3dVolume, err)
	}
	_, err = c.VolumeCreate(ctx, volume.CreateOptions{Name: K3dVolume, Labels: map[string]string{
		"app": "k3d", k3dtypes.LabelClusterName: K3dCluster, labelRuntime: "k3d",
	}})
	return err
}

// UnprivilegedNodesEnv is a test-only hook: machines whose Docker cannot run privileged
// containers (CI sandboxes lacking a capability) create the node with CAP_SYS_ADMIN and
// CAP_NET_ADMIN instead, which the stand-in node image needs; k3s itself needs privileged.
const UnprivilegedNodesEnv = "HARMONY_TEST_K3D_UNPRIVILEGED"

func (k *K3d) createNode(ctx context.Context, s spec) error {
	node := s.node()
	// k3s in the node runs on the engine's cgroups: on cgroup v1 its kubelet is told to run
	// anyway, as harmony's k3s service is (Paths.serverArgs).
	if info, err := k.engine.Client.Info(ctx); err == nil && info.CgroupVersion == "1" {
		node.Args = append(node.Args, CgroupV1KubeletArg)
	}
	if os.Getenv(UnprivilegedNodesEnv) != "1" {
		if err := k3dclient.NodeCreate(ctx, k.rt, node, k3dtypes.NodeCreateOpts{}); err != nil {
			return portHint(err)
		}
		return nil
	}
	// The same preparation as k3dclient.NodeCreate for a server node, then the container
	// through k3d's own translation, with the privileges changed.
	node.FillRuntimeLabels()
	node.Env = append(node.Env, k3dtypes.DefaultNodeEnv...)
	node.Cmd = []string{"server"}
	node.RuntimeLabels[k3dtypes.LabelServerAPIHostIP] = node.ServerOpts.KubeAPI.Binding.HostIP
	node.RuntimeLabels[k3dtypes.LabelServerAPIHost] = node.ServerOpts.KubeAPI.Host
	node.RuntimeLabels[k3dtypes.LabelServerAPIPort] = node.ServerOpts.KubeAPI.Binding.HostPort
	node.Args = append(node.Args, "--tls-san", node.ServerOpts.KubeAPI.Host)
	if _, any := fixes.GetFixes(k.rt); any {
		node.K3dEntrypoint = true
	}
	d, err := k3ddocker.TranslateNodeToContainer(node)
	if err != nil {
		return err
	}
	d.HostConfig.Privileged = false
	d.HostConfig.CapAdd = []string{"SYS_ADMIN", "NET_ADMIN"}
	d.HostConfig.SecurityOpt = []string{"apparmor=unconfined"}
	_, err = k.engine.Client.ContainerCreate(ctx, &d.ContainerConfig, &d.HostConfig, &d.NetworkingConfig, nil, node.Name)
	return portHint(err)
}

func portHint(err error) error {
	if err == nil {
		return nil
	}
	if strings.Contains(err.Error(), "address already in use") || strings.Contains(err.Error(), "port is already allocated") {
		return hint.With(err, "another program uses that port: choose others with --http-port and --https-port")
	}
	return err
}

func (k *K3d) removeContainer(ctx context.Context, name string) error {
	err := k.engine.Client.ContainerRemove(ctx, name, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if errdefs.IsNotFound(err) {
		return nil
	}
	return err
}

// environment is what k3d's start fixes need: the host's address seen from the node. On Docker
// Desktop and colima k3d learns it through its tools container, which harmony does not run, so
// there the DNS fix stays off (k3s then forwards DNS as Docker's embedded resolver allows).
func (k *K3d) environment(ctx context.Context) (*k3dtypes.EnvironmentInfo, error) {
	info, err := k.rt.Info()
	if err != nil {
		return nil, err
	}
	env := &k3dtypes.EnvironmentInfo{RuntimeInfo: *info}
	enabled, _ := fixes.GetFixes(k.rt)
	if isDesktop(info.OS, info.InfoName) {
		if _, set := os.LookupEnv(string(fixes.EnvFixDNS)); !set {
			enabled[fixes.EnvFixDNS] = false
		}
		return env, nil
	}
	ip, err := k.rt.GetHostIP(ctx, K3dNetwork)
	if err != nil {
		return nil, err
	}
	env.HostGateway = ip
	return env, nil
}

func isDesktop(osName, infoName string) bool {
	return strings.Contains(strings.ToLower(osName), "docker desktop") || infoName == "colima"
}

// startSteps start the node and wait for k3s: its log line, the API, a Ready node.
func (k *K3d) startSteps(timeout time.Duration) []Step {
	var waitCtx context.Context
	var cancel context.CancelFunc = func() {}
	var cfg *rest.Config
	return []Step{
		{Name: "start", Run: func(ctx context.Context) error {
			waitCtx, cancel = context.WithTimeout(ctx, timeout)
			return k.startNode(waitCtx, timeout, true)
		}, Undo: func(ctx context.Context) error { return k.stopNode(ctx) }},
		{Name: "API ready", Run: func(context.Context) error {
			var err error
			if cfg, err = k.restConfig(waitCtx); err != nil {
				cancel()
				return err
			}
			err = poll(waitCtx, 250*time.Millisecond, func() (bool, error, error) {
				err := APIReady(waitCtx, cfg)
				return err == nil, nil, err
			})
			if err != nil {
				cancel()
				return k.notReady("the API server was not ready", timeout, err)
			}
			return nil
		}},
		{Name: "node ready", Run: func(context.Context) error {
			defer cancel()
			err := poll(waitCtx, 250*time.Millisecond, func() (bool, error, error) {
				ok, err := nodeReady(waitCtx, cfg)
				if err == nil && !ok {
					err = errors.New("no node is Ready yet")
				}
				return ok, nil, err
			})
			if err != nil {
				return k.notReady("the node was not Ready", timeout, err)
			}
			return nil
		}},
	}
}

// startNode starts the node through k3d (its entrypoint fixes run as k3d writes them); with
// wait, until k3s logs "k3s is up and running".
func (k *K3d) startNode(ctx context.Context, timeout time.Duration, wait bool) error {
	node, err := k.rt.GetNode(ctx, &k3dtypes.Node{Name: K3dNode})
	if err != nil {
		return hint.With(fmt.Errorf("k3d: %w", ErrNotInstalled), "create it with: harmony bootstrap --runtime k3d")
	}
	if node.State.Running {
		return nil
	}
	env, err := k.environment(ctx)
	if err != nil {
		return err
	}
	err = k3dclient.NodeStart(ctx, k.rt, node, &k3dtypes.NodeStartOpts{
		Wait: wait, Timeout: timeout, ReadyLogMessage: k3sReadyLine, EnvironmentInfo: env, Intent: k3dtypes.IntentNodeCreate,
	})
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return k.notReady(fmt.Sprintf("k3s did not log %q", k3sReadyLine), timeout, err)
		}
		return k.notReady("k3s did not start", timeout, portHint(err))
	}
	return nil
}

func (k *K3d) stopNode(ctx context.Context) error {
	c, err := k.container(ctx, K3dNode)
	if err != nil || c == nil {
		return err
	}
	return k.engine.Client.ContainerStop(ctx, K3dNode, container.StopOptions{})
}

// logTail returns the node's last log lines.
func (k *K3d) logTail(ctx context.Context, name string, n int) string {
	if k.engine == nil {
		return ""
	}
	rc, err := k.engine.Client.ContainerLogs(ctx, name, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(n)})
	if err != nil {
		return ""
	}
	defer rc.Close()
	b, _ := io.ReadAll(io.LimitReader(rc, 64<<10))
	return strings.TrimSpace(stripLogHeaders(b))
}

// stripLogHeaders removes Docker's 8-byte stream headers from a non-TTY log.
func stripLogHeaders(b []byte) string {
	var out strings.Builder
	for len(b) >= 8 && (b[0] == 1 || b[0] == 2) && b[1] == 0 && b[2] == 0 && b[3] == 0 {
		n := int(b[4])<<24 | int(b[5])<<16 | int(b[6])<<8 | int(b[7])
		b = b[8:]
		if n > len(b) {
			n = len(b)
		}
		out.Write(b[:n])
		b = b[n:]
	}
	out.Write(b)
	return out.String()
}

func (k *K3d) notReady(what string, timeout time.Duration, cause error) error {
	tail := k.logTail(context.Background(), K3dNode, 15)
	msg := fmt.Sprintf("%s after %s: %v", what, timeout, cause)
	if tail != "" {
		msg += "\nlast lines of the node's log:\n  " + strings.ReplaceAll(tail, "\n", "\n  ")
	}
	hints := []string{}
	if c := likelyCause(tail); c != "" {
		hints = append(hints, "likely cause: "+c)
	}
	hints = append(hints, "full log: docker logs "+K3dNode+"; retry with a longer --timeout if the machine is slow")
	return hint.With(fmt.Errorf("%w: %s", ErrNotReady, msg), hints...)
}

// restConfig reads the node's kubeconfig through k3d (which points it at the API's host port).
func (k *K3d) restConfig(ctx context.Context) (*rest.Config, error) {
	raw, err := k.kubeconfig(ctx)
	if err != nil {
		return nil, err
	}
	return restConfigFrom(raw)
}

// nodeKubeconfig reads the kubeconfig k3s wrote in the active node (where k3d reads it) and
// points it at the API's localhost port.
func (k *K3d) nodeKubeconfig(ctx context.Context) ([]byte, error) {
	c, err := k.container(ctx, K3dNode)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("k3d: %w", ErrNotInstalled)
	}
	rc, err := k.rt.GetKubeconfig(ctx, &k3dtypes.Node{Name: K3dNode})
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	if _, err := tr.Next(); err != nil {
		return nil, fmt.Errorf("read the kubeconfig from %s: %w", K3dNode, err)
	}
	raw, err := io.ReadAll(io.LimitReader(tr, 1<<20))
	if err != nil {
		return nil, err
	}
	cfg, err := clientcmd.Load(raw)
	if err != nil {
		return nil, fmt.Errorf("read the kubeconfig from %s: %w", K3dNode, err)
	}
	for _, cl := range cfg.Clusters {
		cl.Server = "https://127.0.0.1:" + specOf(c).APIPort
	}
	return clientcmd.Write(*cfg)
}

// restConfigOnce is restConfig without waiting for the kubeconfig to appear.
func (k *K3d) restConfigOnce(ctx context.Context) (*rest.Config, error) {
	raw, err := k.nodeKubeconfig(ctx)
	if err != nil {
		return nil, err
	}
	rc, err := clientcmd.RESTConfigFromKubeConfig(raw)
	if err != nil {
		return nil, err
	}
	rc.Timeout = 5 * time.Second
	return rc, nil
}

func (k *K3d) kubeconfig(ctx context.Context) ([]byte, error) {
	var kc []byte
	err := poll(ctx, 250*time.Millisecond, func() (bool, error, error) {
		var err error
		kc, err = k.nodeKubeconfig(ctx)
		return err == nil, nil, err
	})
	if err != nil {
		return nil, fmt.Errorf("read the kubeconfig from %s: %w", K3dNode, err)
	}
	return kc, nil
}

func (k *K3d) healthy(ctx context.Context) bool {
	c, err := k.container(ctx, K3dNode)
	if err != nil || c == nil || c.State == nil || !c.State.Running {
		return false
	}
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cfg, err := k.restConfigOnce(hctx)
	if err != nil {
		return false
	}
	cfg.Timeout = 2 * time.Second
	if APIReady(hctx, cfg) != nil {
		return false
	}
	ok, err := nodeReady(hctx, cfg)
	return err == nil && ok
}

func (k *K3d) mergeKubeconfig(ctx context.Context, switchContext bool) (string, error) {
	raw, err := k.kubeconfig(ctx)
	if err != nil {
		return "", err
	}
	target, err := UserKubeconfigPath()
	if err != nil {
		return "", err
	}
	_, err = MergeKubeconfig(raw, target, switchContext)
	return target, err
}

// Start starts the stopped node (the cluster is never recreated) and waits until it serves.
func (k *K3d) Start(ctx context.Context) error {
	inst, err := k.Detect(ctx)
	if err != nil {
		return err
	}
	if !inst.Installed {
		return hint.With(fmt.Errorf("k3d: %w", ErrNotInstalled), "create it with: harmony bootstrap --runtime k3d")
	}
	return RunSteps(ctx, k.startSteps(DefaultTimeout), k.Progress)
}

// Stop stops the node; its data stays on the volume.
func (k *K3d) Stop(ctx context.Context) error {
	if _, err := k.docker(ctx); err != nil {
		return err
	}
	return k.stopNode(ctx)
}

// Status reports the cluster's state.
func (k *K3d) Status(ctx context.Context) (Status, error) {
	m, err := k.Trust.Current()
	if err != nil {
		return Status{}, err
	}
	st := Status{Runtime: "k3d", Policy: "patch upgrades within " + m.K3s.Line}
	e, err := k.docker(ctx)
	if err != nil {
		return Status{}, err
	}
	st.Supervisor = "docker " + e.Version + " at " + e.Endpoint
	inst, err := k.Detect(ctx)
	if err != nil {
		return Status{}, err
	}
	st.Installed, st.Version, st.ForeignInstall = inst.Installed, inst.Version, inst.Foreign
	if !inst.Installed {
		return st, nil
	}
	st.Network = "localhost"
	c, err := k.container(ctx, K3dNode)
	if err != nil || c == nil {
		return st, err
	}
	st.Running = c.State != nil && c.State.Running
	if st.Running {
		st.PID = c.State.Pid
		hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if cfg, err := k.restConfigOnce(hctx); err == nil {
			cfg.Timeout = 2 * time.Second
			st.APIHealthy = APIReady(hctx, cfg) == nil
			st.NodeReady, _ = nodeReady(hctx, cfg)
		}
	}
	if v, err := manifests.ParseVersion(inst.Version); err == nil {
		for _, up := range m.Upgrades(v, manifests.Policy{}) {
			if up.Image.Digest != "" {
				st.NewerPatch = up.Version.String()
				break
			}
		}
	}
	return st, nil
}

// Kubeconfig returns the cluster's kubeconfig with the context named "harmony".
func (k *K3d) Kubeconfig(ctx context.Context) ([]byte, error) {
	if _, err := k.docker(ctx); err != nil {
		return nil, err
	}
	if inst, err := k.Detect(ctx); err != nil {
		return nil, err
	} else if !inst.Installed {
		return nil, hint.With(fmt.Errorf("k3d: %w", ErrNotInstalled), "create it with: harmony bootstrap --runtime k3d")
	}
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	raw, err := k.kubeconfig(qctx)
	if err != nil {
		return nil, hint.With(err, "is the cluster started? run: harmony runtime start")
	}
	return harmonyKubeconfig(raw)
}

// Uninstall removes exactly what harmony created: its node containers, the network when harmony
// created it and nothing else uses it, the kubeconfig context; purge also removes the data volume.
func (k *K3d) Uninstall(ctx context.Context, purge bool) error {
	e, err := k.docker(ctx)
	if err != nil {
		return err
	}
	inst, err := k.Detect(ctx)
	if err != nil {
		return err
	}
	if inst.Foreign != "" {
		return k.foreignError(inst)
	}
	vol, verr := e.Client.VolumeInspect(ctx, K3dVolume)
	ownVolume := verr == nil && vol.Labels[labelRuntime] == "k3d"
	if !inst.Installed && !(purge && ownVolume) {
		return hint.With(fmt.Errorf("k3d: %w", ErrNotInstalled), "nothing to uninstall")
	}
	var errs []error
	networkOwned := false
	for _, name := range k.nodes(ctx) {
		c, err := k.container(ctx, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if c == nil || c.Config.Labels[labelRuntime] != "k3d" {
			continue
		}
		networkOwned = networkOwned || c.Config.Labels[labelNetOwned] == "true"
		errs = append(errs, k.removeContainer(ctx, name))
	}
	if networkOwned {
		if n, err := e.Client.NetworkInspect(ctx, K3dNetwork, network.InspectOptions{}); err == nil && len(n.Containers) == 0 {
			errs = append(errs, e.Client.NetworkRemove(ctx, K3dNetwork))
		}
	}
	if target, err := UserKubeconfigPath(); err == nil {
		errs = append(errs, RemoveFromKubeconfig(target))
	}
	if purge && ownVolume {
		errs = append(errs, e.Client.VolumeRemove(ctx, K3dVolume, false))
	}
	return errors.Join(errs...)
}
