//go:build linux

package bootstrap_test

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/NationTech/harmony-agent/bootstrap"
	"github.com/NationTech/harmony-agent/internal/dockertest"
	"github.com/NationTech/harmony-agent/internal/releasetest"
	"github.com/NationTech/harmony-agent/internal/testcluster"
	"github.com/NationTech/harmony-agent/manifests"
)

// startRegistry runs Debian's docker-registry on a loopback port until the test ends.
func startRegistry(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("docker-registry is not installed (scripts/test installs it)")
		}
		t.Skip("docker-registry is not installed (scripts/test installs it)")
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := fmt.Sprintf("version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: %s}\n", filepath.Join(dir, "data"), addr)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for i := 0; ; i++ {
		if r, err := http.Get("http://" + addr + "/v2/"); err == nil {
			r.Body.Close()
			break
		}
		if i > 100 {
			t.Fatal("the local registry did not start")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return addr
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func freePort(t *testing.T) string {
	_, p, _ := net.SplitHostPort(freeAddr(t))
	return p
}

// forwardAPI makes the test API server (on the host's loopback) reachable from containers: a
// TCP forwarder on the address of Docker's default bridge, which Docker's host-gateway names.
func forwardAPI(t *testing.T, dc *client.Client, apiHost string) string {
	t.Helper()
	n, err := dc.NetworkInspect(context.Background(), "bridge", network.InspectOptions{})
	if err != nil || len(n.IPAM.Config) == 0 {
		t.Fatalf("inspect the bridge network: %v", err)
	}
	l, err := net.Listen("tcp", n.IPAM.Config[0].Gateway+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s, err := net.Dial("tcp", apiHost)
				if err != nil {
					return
				}
				defer s.Close()
				go func() { _, _ = io.Copy(s, c) }()
				_, _ = io.Copy(c, s)
			}()
		}
	}()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return "host.k3d.internal:" + port
}

// standinKubeconfig is the test API server's kubeconfig as k3s writes it: everything named
// "default", the server at https://127.0.0.1:6443.
func standinKubeconfig(t *testing.T, apiKubeconfig string) []byte {
	cfg, err := clientcmd.LoadFromFile(apiKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	cl, user := cfg.Clusters[ctx.Cluster], cfg.AuthInfos[ctx.AuthInfo]
	cl.Server = "https://127.0.0.1:6443"
	cfg.Clusters = map[string]*clientcmdapi.Cluster{"default": cl}
	cfg.AuthInfos = map[string]*clientcmdapi.AuthInfo{"default": user}
	ctx.Cluster, ctx.AuthInfo = "default", "default"
	cfg.Contexts = map[string]*clientcmdapi.Context{"default": ctx}
	cfg.CurrentContext = "default"
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// buildNodeStandin builds the stand-in k3s node image for one version (mode "ready" or
// "never-ready"), pushes it to the registry by tag and returns its manifest digest; the local
// copy is removed, so harmony has to pull it.
func buildNodeStandin(t *testing.T, dc *client.Client, bin []byte, registry, version, mode, target string, kubeconfig []byte) string {
	t.Helper()
	ctx := context.Background()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, mode int64, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write(data)
	}
	link := func(name, target string) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Linkname: target, Typeflag: tar.TypeSymlink, Mode: 0o777}); err != nil {
			t.Fatal(err)
		}
	}
	dir := func(name string) {
		if err := tw.WriteHeader(&tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
	}
	add("Dockerfile", 0o644, []byte("FROM scratch\nCOPY rootfs/ /\nLABEL dev.harmony.test-standin=k3s-node\nENTRYPOINT [\"/bin/k3s\"]\n"))
	busybox, err := os.ReadFile(busyboxStatic(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"rootfs", "rootfs/bin", "rootfs/tmp", "rootfs/var", "rootfs/var/log", "rootfs/standin", "rootfs/etc"} {
		dir(d)
	}
	add("rootfs/bin/k3s", 0o755, bin)
	add("rootfs/bin/busybox", 0o755, busybox)
	applets, err := exec.Command(busyboxStatic(t), "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range strings.Fields(string(applets)) {
		if a != "busybox" && a != "kubectl" {
			link("rootfs/bin/"+a, "busybox")
		}
	}
	for _, tool := range []string{"kubectl", "ctr", "iptables-save", "iptables-restore"} {
		link("rootfs/bin/"+tool, "k3s")
	}
	add("rootfs/standin/mode", 0o644, []byte(mode))
	add("rootfs/standin/version", 0o644, []byte(version))
	add("rootfs/standin/target", 0o644, []byte(target))
	add("rootfs/standin/kubeconfig.yaml", 0o600, kubeconfig)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	ref := registry + "/rancher/k3s:" + strings.ReplaceAll(version, "+", "-")
	// NoCache: the classic builder's cache probe of a FROM scratch step reads every parentless
	// image, and fails ("unable to find image sha256:…") when a parallel test removes one meanwhile.
	resp, err := dc.ImageBuild(ctx, &buf, types.ImageBuildOptions{Tags: []string{ref}, Remove: true, ForceRemove: true, NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	err = jsonmessage.DisplayJSONMessagesStream(resp.Body, io.Discard, 0, false, nil)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("build the stand-in image: %v", err)
	}
	auth := base64.URLEncoding.EncodeToString([]byte("{}"))
	rc, err := dc.ImagePush(ctx, ref, image.PushOptions{RegistryAuth: auth})
	if err != nil {
		t.Fatal(err)
	}
	var digest string
	err = jsonmessage.DisplayJSONMessagesStream(rc, io.Discard, 0, false, func(m jsonmessage.JSONMessage) {
		var aux struct{ Digest string }
		if m.Aux != nil && json.Unmarshal(*m.Aux, &aux) == nil && aux.Digest != "" {
			digest = aux.Digest
		}
	})
	rc.Close()
	if err != nil || digest == "" {
		t.Fatalf("push %s: %v (digest %q)", ref, err, digest)
	}
	probePrivileged(t, dc, ref)
	if _, err := dc.ImageRemove(ctx, ref, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
		t.Fatal(err)
	}
	return digest
}

func busyboxStatic(t *testing.T) string {
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if f, err := elf.Open(p); err == nil {
			static := true
			for _, prog := range f.Progs {
				static = static && prog.Type != elf.PT_INTERP
			}
			f.Close()
			if static {
				return p
			}
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("busybox-static is not installed (scripts/test installs it)")
	}
	t.Skip("busybox-static is not installed (scripts/test installs it)")
	return ""
}

// tamperingRegistry answers a request for pinned's manifest with other's: a registry (or a
// mirror) serving other bytes under the pinned digest.
func tamperingRegistry(t *testing.T, registry, pinned, other string) string {
	u, _ := url.Parse("http://" + registry)
	proxy := httputil.NewSingleHostReverseProxy(u)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.URL.Path = strings.Replace(r.URL.Path, "/manifests/"+pinned, "/manifests/"+other, 1)
		proxy.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// k3dMachine is a user with Docker: a home, a kubeconfig with a context of its own, a mirror
// serving a signed runtime manifest that pins the stand-in node images.
func k3dMachine(t *testing.T, registry string, digests map[string]string, apiKubeconfig string) *machine {
	m := &machine{t: t, root: t.TempDir(), home: t.TempDir(), srv: releasetest.New(t)}
	man, err := manifests.Load()
	if err != nil {
		t.Fatal(err)
	}
	man.Serial = 5
	base := man.DefaultRelease()
	var rels []manifests.Release
	for v, d := range digests {
		ver, err := manifests.ParseVersion(v)
		if err != nil {
			t.Fatal(err)
		}
		r := base
		r.Version = ver
		r.Image = manifests.Image{Ref: "rancher/k3s:" + ver.ImageTag(), Digest: d}
		rels = append(rels, r)
	}
	man.K3s.Releases = rels
	data, err := man.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := manifests.Parse(data); err != nil {
		t.Fatalf("test manifest: %v", err)
	}
	m.srv.Add(releasetest.HarmonyRepo, "v0.0.0-test", manifests.RemoteName, data)
	m.srv.Add(releasetest.HarmonyRepo, "v0.0.0-test", manifests.RemoteSignature, testKey.Sign(data))
	m.srv.SetLatest(releasetest.HarmonyRepo, "v0.0.0-test")
	m.kubeconfig = filepath.Join(m.home, ".kube", "config")
	_ = os.MkdirAll(filepath.Dir(m.kubeconfig), 0o700)
	existing := "apiVersion: v1\nkind: Config\nclusters: [{name: work, cluster: {server: \"https://work.example:6443\"}}]\nusers: [{name: work, user: {token: secret}}]\ncontexts: [{name: work, context: {cluster: work, user: work}}]\ncurrent-context: work\n"
	if err := os.WriteFile(m.kubeconfig, []byte(existing), 0o600); err != nil {
		t.Fatal(err)
	}
	m.env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + m.home, "KUBECONFIG=" + m.kubeconfig,
		"HARMONY_ROOT=" + m.root, "HARMONY_HOME=" + filepath.Join(m.home, "harmony"), "HARMONY_MIRROR=" + m.srv.URL,
		"HARMONY_REGISTRY=" + registry, "NO_COLOR=1", bootstrap.UnprivilegedNodesEnv + "=" + unprivileged(), "HARMONY_TEST_APISERVER_KUBECONFIG=" + apiKubeconfig,
	}
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		m.env = append(m.env, "DOCKER_HOST="+h)
	}
	return m
}

// unprivilegedNodes says whether this engine cannot run privileged containers (CI sandboxes
// that lack a capability): then harmony is told to create the node with the capabilities the
// stand-in needs (bootstrap.UnprivilegedNodesEnv). Probed once with a stand-in image.
var unprivilegedNodes = ""

func probePrivileged(t *testing.T, dc *client.Client, ref string) {
	if unprivilegedNodes != "" {
		return
	}
	ctx := context.Background()
	c, err := dc.ContainerCreate(ctx, &container.Config{Image: ref, Entrypoint: []string{"/bin/kubectl"}},
		&container.HostConfig{Privileged: true, NetworkMode: "none"}, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer dc.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
	unprivilegedNodes = "0"
	if err := dc.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil && strings.Contains(err.Error(), "apply caps") {
		unprivilegedNodes = "1"
		t.Log("this Docker engine cannot run privileged containers: the node gets CAP_SYS_ADMIN and CAP_NET_ADMIN instead")
	}
}

func unprivileged() string { return unprivilegedNodes }

func (m *machine) setEnv(kv string) {
	k, _, _ := strings.Cut(kv, "=")
	for i, e := range m.env {
		if strings.HasPrefix(e, k+"=") {
			m.env[i] = kv
			return
		}
	}
	m.env = append(m.env, kv)
}

// cleanK3d removes every Docker object of a harmony k3d cluster (before and after the test).
func cleanK3d(dc *client.Client) {
	ctx := context.Background()
	list, _ := dc.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "k3d.cluster=harmony"))})
	for _, c := range list {
		_ = dc.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	}
	_ = dc.NetworkRemove(ctx, bootstrap.K3dNetwork)
	for _, v := range []string{bootstrap.K3dVolume, "k3d-harmony-images"} {
		_ = dc.VolumeRemove(ctx, v, true)
	}
}

func bootCount(t *testing.T, dc *client.Client) string {
	rc, _, err := dc.CopyFromContainer(context.Background(), bootstrap.K3dNode, "/var/lib/rancher/k3s/standin-boots")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	if _, err := tr.Next(); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(tr)
	return string(b)
}

func TestK3dRuntimeEndToEnd(t *testing.T) {
	dc := dockertest.Need(t)
	tc := testcluster.Need(t, cluster)
	registry := startRegistry(t)
	cleanK3d(dc)
	t.Cleanup(func() { cleanK3d(dc) })

	root, err := releasetest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	binPath := filepath.Join(t.TempDir(), "k3s")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", binPath, "./bootstrap/testdata/k3s-node-standin")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the node stand-in: %v\n%s", err, out)
	}
	bin, _ := os.ReadFile(binPath)
	apiURL, _ := url.Parse(tc.Config.Host)
	target := forwardAPI(t, dc, apiURL.Host)
	kc := standinKubeconfig(t, tc.Kubeconfig)
	const v1, v2, v3 = "v1.36.3+k3s1", "v1.36.4+k3s1", "v1.36.5+k3s1"
	digests := map[string]string{
		v1: buildNodeStandin(t, dc, bin, registry, v1, "ready", target, kc),
		v2: buildNodeStandin(t, dc, bin, registry, v2, "ready", target, kc),
		v3: buildNodeStandin(t, dc, bin, registry, v3, "never-ready", target, kc),
	}
	m := k3dMachine(t, registry, digests, tc.Kubeconfig)
	httpPort, httpsPort := freePort(t), freePort(t)
	ctx := context.Background()

	// A registry serving other bytes under the pinned digest is refused, and nothing is created.
	m.setEnv("HARMONY_REGISTRY=" + tamperingRegistry(t, registry, digests[v1], digests[v2]))
	r := m.harmony("bootstrap", "--runtime", "k3d", "--version", v1)
	if r.code != 1 || !strings.Contains(r.stderr, "pinned digest") {
		t.Fatalf("a tampered image was not refused: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := dc.ContainerInspect(ctx, bootstrap.K3dNode); err == nil {
		t.Fatal("a refused image left a container")
	}
	if _, err := dc.VolumeInspect(ctx, bootstrap.K3dVolume); err == nil {
		t.Fatal("a refused image left a volume")
	}
	m.setEnv("HARMONY_REGISTRY=" + registry)

	// Bootstrap: pulled by digest, one labelled node, the volume, the ports, the kubeconfig.
	r = m.mustHarmony("bootstrap", "--runtime", "k3d", "--version", v1, "--http-port", httpPort, "--https-port", httpsPort, "--timeout", "2m")
	for _, phase := range []string{"pull", "network", "volume", "node", "start", "API ready", "node ready"} {
		if !strings.Contains(r.stderr, "] "+phase) {
			t.Errorf("progress lacks phase %q:\n%s", phase, r.stderr)
		}
	}
	c, err := dc.ContainerInspect(ctx, bootstrap.K3dNode)
	if err != nil {
		t.Fatal(err)
	}
	if want := registry + "/rancher/k3s@" + digests[v1]; c.Config.Image != want || !c.State.Running {
		t.Fatalf("node image %q (running %v), want %q", c.Config.Image, c.State.Running, want)
	}
	for k, v := range map[string]string{"app": "k3d", "k3d.cluster": "harmony", "k3d.role": "server", "dev.harmony.runtime": "k3d", "dev.harmony.k3s.version": v1} {
		if c.Config.Labels[k] != v {
			t.Errorf("label %s=%q, want %q", k, c.Config.Labels[k], v)
		}
	}
	// On an engine with cgroup v1 (this CI machine's), the node's kubelet is told to run anyway.
	if info, err := dc.Info(ctx); err == nil {
		if has := slices.Contains(c.Config.Cmd, bootstrap.CgroupV1KubeletArg); has != (info.CgroupVersion == "1") {
			t.Errorf("engine on cgroup v%s: node command %q", info.CgroupVersion, c.Config.Cmd)
		}
	}
	mounted := false
	for _, mnt := range c.Mounts {
		mounted = mounted || (mnt.Type == "volume" && mnt.Name == bootstrap.K3dVolume && mnt.Destination == "/var/lib/rancher/k3s")
	}
	if !mounted {
		t.Errorf("the k3s data directory is not on the volume %s: %+v", bootstrap.K3dVolume, c.Mounts)
	}
	ports := c.HostConfig.PortBindings
	if b := ports["80/tcp"]; len(b) != 1 || b[0].HostPort != httpPort || b[0].HostIP != "127.0.0.1" {
		t.Errorf("port 80 → %+v, want 127.0.0.1:%s", b, httpPort)
	}
	if b := ports["443/tcp"]; len(b) != 1 || b[0].HostPort != httpsPort {
		t.Errorf("port 443 → %+v, want %s", b, httpsPort)
	}
	api := ports["6443/tcp"]
	if len(api) != 1 || api[0].HostIP != "127.0.0.1" || api[0].HostPort == "" {
		t.Fatalf("API port → %+v", api)
	}
	cfg, err := clientcmd.LoadFromFile(m.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CurrentContext != "work" || cfg.Contexts["work"] == nil || cfg.Contexts["harmony"] == nil {
		t.Fatalf("kubeconfig merge: current %q, contexts %v", cfg.CurrentContext, cfg.Contexts)
	}
	if s := cfg.Clusters["harmony"].Server; s != "https://127.0.0.1:"+api[0].HostPort {
		t.Fatalf("harmony context server %q, want the API's localhost port %s", s, api[0].HostPort)
	}

	// Idempotent: a healthy cluster → nothing done.
	if r = m.mustHarmony("bootstrap", "--runtime", "k3d"); !strings.Contains(r.stdout, "already installed and healthy") {
		t.Fatalf("second bootstrap: %s\n%s", r.stdout, r.stderr)
	}
	if st := m.status(); st.Runtime != "k3d" || !st.Installed || st.Version != v1 || !st.APIHealthy || !st.NodeReady {
		t.Fatalf("status: %+v", st)
	}

	// Stop and start keep the node and its volume: the stand-in counts its boots there.
	m.mustHarmony("runtime", "stop")
	if c, _ := dc.ContainerInspect(ctx, bootstrap.K3dNode); c.State == nil || c.State.Running {
		t.Fatal("runtime stop left the node running")
	}
	if r = m.mustHarmony("bootstrap", "--runtime", "k3d"); strings.Contains(r.stderr, "] pull") || !strings.Contains(r.stderr, "starting it") {
		t.Fatalf("a stopped cluster was not just started:\n%s", r.stderr)
	}
	if n := bootCount(t, dc); n != "2" {
		t.Fatalf("boots on the volume: %s, want 2", n)
	}

	// launch through the k3d path.
	m.mustHarmony("launch", filepath.Join(root, "examples", "hello"), "--timeout", "2m")

	// launch building the project's images: loaded into the node through the k3d library's import
	// (the cluster found by k3d; the stand-in node's ctr records it), then applied with the content
	// tags; launching again loads nothing (the node's ctr lists them).
	prefix := randomName("harmony-test-k3d-") + "-"
	shop := imageProject(t, dc, prefix)
	ns := strings.TrimSuffix(strings.TrimPrefix(prefix, "harmony-test-"), "-")
	t.Cleanup(func() {
		_ = tc.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	for i := range 2 {
		start := time.Now()
		m.mustHarmony("launch", shop, "-n", ns, "--no-wait")
		t.Logf("harmony launch %d of the two-image project into k3d: %s", i+1, time.Since(start).Round(time.Millisecond))
		imports := dockertest.NodeImports(t, dc, bootstrap.K3dNode)
		if len(imports) != 1 || len(imports[0]) != 2 || !strings.HasPrefix(imports[0][0], "harmony.invalid/"+prefix) {
			t.Fatalf("launch %d: the node recorded the imports %q, want one import of both images", i+1, imports)
		}
	}
	d, err := tc.Client.AppsV1().Deployments(ns).Get(ctx, "frontend", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := d.Spec.Template.Spec.Containers[0]; !strings.HasPrefix(c.Image, "harmony.invalid/"+prefix+"frontend:harmony-") || c.ImagePullPolicy != "IfNotPresent" ||
		!slices.Contains(dockertest.NodeImports(t, dc, bootstrap.K3dNode)[0], c.Image) {
		t.Fatalf("deployment frontend runs %s (%s), want the imported content tag with IfNotPresent", c.Image, c.ImagePullPolicy)
	}

	// Upgrade: a new node with the next pinned image on the same volume.
	r = m.mustHarmony("runtime", "upgrade", "--to", v2, "--timeout", "90s")
	c, _ = dc.ContainerInspect(ctx, bootstrap.K3dNode)
	if c.Config.Image != registry+"/rancher/k3s@"+digests[v2] || c.Config.Labels["dev.harmony.k3s.version"] != v2 {
		t.Fatalf("after the upgrade the node runs %s (%s)\n%s", c.Config.Image, c.Config.Labels["dev.harmony.k3s.version"], r.stderr)
	}
	if n := bootCount(t, dc); n != "3" {
		t.Fatalf("boots on the volume after the upgrade: %s, want 3 (the data volume must be kept)", n)
	}

	// An upgrade to a version that never becomes ready is rolled back to the previous node.
	r = m.harmony("runtime", "upgrade", "--to", v3, "--timeout", "20s")
	if r.code == 0 || !strings.Contains(r.stderr, "rolled back") {
		t.Fatalf("a never-ready upgrade: exit %d\n%s", r.code, r.stderr)
	}
	c, _ = dc.ContainerInspect(ctx, bootstrap.K3dNode)
	if c.Config.Labels["dev.harmony.k3s.version"] != v2 || !c.State.Running {
		t.Fatalf("after the rollback the node is %s (running %v)", c.Config.Labels["dev.harmony.k3s.version"], c.State.Running)
	}
	if st := m.status(); st.Version != v2 || !st.APIHealthy {
		t.Fatalf("status after the rollback: %+v", st)
	}

	// Uninstall removes exactly what harmony created; the volume only with --purge.
	foreign := "k3d-harmony-images" // what the k3d CLI would add: never harmony's to remove
	if _, err := dc.VolumeCreate(ctx, volume.CreateOptions{Name: foreign, Labels: map[string]string{"app": "k3d", "k3d.cluster": "harmony"}}); err != nil {
		t.Fatal(err)
	}
	m.mustHarmony("runtime", "uninstall")
	if list, _ := dc.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "k3d.cluster=harmony"))}); len(list) != 0 {
		t.Fatalf("uninstall left %d containers", len(list))
	}
	if _, err := dc.NetworkInspect(ctx, bootstrap.K3dNetwork, network.InspectOptions{}); err == nil {
		t.Fatal("uninstall left the network harmony created")
	}
	if _, err := dc.VolumeInspect(ctx, bootstrap.K3dVolume); err != nil {
		t.Fatalf("uninstall without --purge removed the data volume: %v", err)
	}
	if cfg, _ := clientcmd.LoadFromFile(m.kubeconfig); cfg.Contexts["harmony"] != nil || cfg.Contexts["work"] == nil {
		t.Fatalf("kubeconfig after uninstall: %v", cfg.Contexts)
	}
	m.mustHarmony("runtime", "uninstall", "--purge", "--yes")
	if _, err := dc.VolumeInspect(ctx, bootstrap.K3dVolume); err == nil {
		t.Fatal("uninstall --purge kept the data volume")
	}
	if _, err := dc.VolumeInspect(ctx, foreign); err != nil {
		t.Fatalf("uninstall removed a volume harmony did not create: %v", err)
	}
}

// TestDockerDiagnosisRealEngine checks the messages against the real engine: a socket nobody
// answers on, and the real socket used by a user outside the docker group.
func TestDockerDiagnosisRealEngine(t *testing.T) {
	dockertest.Need(t)
	m := &machine{t: t, home: t.TempDir()}
	m.env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + m.home, "HARMONY_HOME=" + filepath.Join(m.home, "h"), "NO_COLOR=1", "HARMONY_NO_UPDATE_CHECK=1",
		"DOCKER_HOST=unix://" + filepath.Join(m.home, "docker.sock")}
	r := m.harmony("bootstrap", "--runtime", "k3d")
	if r.code != 1 || !strings.Contains(r.stderr, "the docker daemon is not running") || !strings.Contains(r.stderr, "sudo systemctl start docker") || !strings.Contains(r.stderr, "or fix DOCKER_HOST") {
		t.Fatalf("no daemon: exit %d\n%s", r.code, r.stderr)
	}

	if os.Geteuid() != 0 {
		t.Skip("the permission case runs the real socket as another user: needs root to switch user")
	}
	sock := "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		sock = strings.TrimPrefix(h, "unix://")
	}
	if st, err := os.Stat(sock); err != nil || st.Mode().Perm()&0o006 != 0 {
		t.Skipf("the socket %s is missing or open to everyone", sock)
	}
	// A directory the other user can enter, with a copy of harmony it can run.
	home, err := os.MkdirTemp("", "harmony-other-user-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	_ = os.Chmod(home, 0o777)
	bin, err := os.ReadFile(harmonyBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "harmony"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(home, "harmony"), "bootstrap", "--runtime", "k3d")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "HARMONY_HOME=" + filepath.Join(home, "h"), "NO_COLOR=1", "HARMONY_NO_UPDATE_CHECK=1", "DOCKER_HOST=unix://" + sock}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no permission to use the docker socket") || !strings.Contains(string(out), "usermod -aG docker") {
		t.Fatalf("socket without permission: %v\n%s", err, out)
	}
}
