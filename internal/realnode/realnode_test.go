//go:build linux

package realnode_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/NationTech/harmony-agent/internal/dockertest"
	"github.com/NationTech/harmony-agent/internal/releasetest"
	"github.com/NationTech/harmony-agent/internal/testcluster"
)

var cluster *testcluster.Cluster

func TestMain(m *testing.M) {
	os.Exit(testcluster.Main(m, &cluster, testcluster.WithRealNode()))
}

// machine is a user's account with harmony installed by install.sh from the snapshot release,
// whose k3s is the stand-in serving the test control plane and whose `k3s ctr` is the real ctr
// against the real node's containerd.
type machine struct {
	t    *testing.T
	c    *testcluster.Cluster
	env  []string
	bin  string
	root string
}

func newMachine(t *testing.T) *machine {
	t.Helper()
	c := testcluster.Need(t, cluster)
	snap := releasetest.NeedSnapshot(t)
	root, err := releasetest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	srv := releasetest.New(t)
	snap.Serve(t, srv)
	standinPath, err := releasetest.BuildK3sStandin(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	standin, _ := os.ReadFile(standinPath)
	if _, err := srv.K3sRelease(snap.Tag(), func(b []byte) []byte { return snap.Sign(t, b) }, standin, 2); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	bin := filepath.Join(home, ".local", "bin")
	m := &machine{t: t, c: c, bin: filepath.Join(bin, "harmony"), root: root, env: []string{
		"HOME=" + home, "PATH=" + bin + ":" + os.Getenv("PATH"), "SHELL=/bin/sh", "NO_COLOR=1",
		"HARMONY_MIRROR=" + srv.URL, "HARMONY_MINISIGN_PUBKEY=" + snap.Pubkey, "HARMONY_INSTALL_DIR=" + bin,
		"HARMONY_ROOT=" + t.TempDir(), "HARMONY_TEST_APISERVER_KUBECONFIG=" + c.Kubeconfig,
		"HARMONY_TEST_CTR=" + c.Node.Ctr, "HARMONY_TEST_CONTAINERD=" + c.Node.Containerd,
	}}
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		m.env = append(m.env, "DOCKER_HOST="+h)
	}
	t.Cleanup(func() { m.run("", m.bin, "runtime", "stop") })
	out, code := m.run("", "sh", "-c", "sh < "+filepath.Join(root, "install.sh"))
	if code != 0 || !strings.Contains(out, "installed harmony "+snap.Version) {
		t.Fatalf("install.sh (exit %d):\n%s", code, out)
	}
	// k3s, named: "auto" would pick k3d when bootstrap's k3d test (another package, run at the
	// same time by go test ./...) holds harmony's k3d node in the machine's engine.
	if out, code := m.run("", m.bin, "bootstrap", "--runtime", "k3s"); code != 0 {
		t.Fatalf("harmony bootstrap (exit %d):\n%s", code, out)
	}
	return m
}

func (m *machine) run(dir, name string, args ...string) (string, int) {
	m.t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env, cmd.Dir = m.env, dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), ee.ExitCode()
	} else if err != nil {
		m.t.Fatal(err)
	}
	return out.String(), 0
}

// payload builds launch's test image program (static, so a FROM scratch image runs it) into path.
func (m *machine) payload(path string) {
	m.t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		m.t.Fatal(err)
	}
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", path, "./launch/testdata/image-payload")
	build.Dir, build.Env = m.root, append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := build.CombinedOutput(); err != nil {
		m.t.Fatalf("build the image payload: %v\n%s", err, out)
	}
}

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// webProject is the fixture: a skaffold.yaml whose one artifact is a FROM scratch image
// of a static HTTP server, a Deployment with a readiness probe and a Service.
func (m *machine) webProject(name string) string {
	root := filepath.Join(m.t.TempDir(), name)
	m.payload(filepath.Join(root, "web", "server"))
	writeFiles(m.t, root, map[string]string{
		"skaffold.yaml": "apiVersion: skaffold/v4beta11\nkind: Config\nbuild:\n  artifacts:\n  - {image: " + name + "-web, context: web}\n" +
			"manifests: {rawYaml: [k8s/*.yaml]}\n",
		"web/Dockerfile": "FROM scratch\nCOPY server /server\nENTRYPOINT [\"/server\", \"--serve\", \":8080\"]\n",
		"k8s/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: ` + name + `-web
        ports: [{containerPort: 8080}]
        readinessProbe:
          httpGet: {path: /healthz, port: 8080}
          periodSeconds: 1
`,
		"k8s/service.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{port: 8080, targetPort: 8080}]\n",
	})
	return root
}

// podsOf returns the pods of namespace ns.
func (m *machine) pods(ns string) []corev1.Pod {
	m.t.Helper()
	list, err := m.c.Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		m.t.Fatal(err)
	}
	return list.Items
}

// containersOf lists the node's containerd containers (sandboxes included) of namespace ns's pods.
func (m *machine) containersOf(ns string) []string {
	m.t.Helper()
	out, err := m.c.Node.CtrRun(context.Background(), nil, "containers", "ls", "-q", `labels."io.kubernetes.pod.namespace"==`+ns)
	if err != nil {
		m.t.Fatal(err)
	}
	return strings.Fields(out)
}

// forward runs harmony forward in project's folder (until the test ends) and returns the local
// address it prints for svc/web.
func (m *machine) forward(project string) string {
	m.t.Helper()
	lines := m.background(project, "forward")
	url := waitLine(m.t, lines, regexp.MustCompile(`^svc/web +http://(localhost:\d+) +forwarded \(port 8080\)$`))
	return url[1]
}

func get(t *testing.T, url string) (string, error) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("%s: %s", url, resp.Status)
	}
	return string(b), err
}

// TestRealNodeQuickStart is the quick start all the way, on a real node: install.sh from the
// snapshot, harmony bootstrap, harmony launch of a skaffold.yaml project whose image is built
// from its Dockerfile (the Docker engine), loaded through k3s's ctr into the node's containerd
// and run by the kubelet; its readiness probe passes, the port-forward launch prints answers
// with the server's reply; a no-change launch again; harmony down, and its containers are gone
// from containerd.
func TestRealNodeQuickStart(t *testing.T) {
	dockertest.Need(t)
	m := newMachine(t)
	project := m.webProject("quickstart")
	ns := "quickstart"

	start := time.Now()
	out, code := m.run(project, m.bin, "launch")
	launched := time.Since(start)
	if code != 0 {
		t.Fatalf("harmony launch (exit %d):\n%s\nkubelet:\n%s", code, out, m.c.LogTail("kubelet", 20))
	}
	t.Logf("harmony launch (%s):\n%s", launched.Round(time.Millisecond), out)
	pods := m.pods(ns)
	if len(pods) != 1 {
		t.Fatalf("want one pod in %s, got %d", ns, len(pods))
	}
	p := pods[0]
	if p.Spec.NodeName != m.c.Node.Name || p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
		t.Fatalf("pod %s: node %q (want the real node %s), phase %s, IP %q", p.Name, p.Spec.NodeName, m.c.Node.Name, p.Status.Phase, p.Status.PodIP)
	}
	ready := false
	for _, cs := range p.Status.ContainerStatuses {
		ready = cs.Ready && cs.State.Running != nil && strings.HasPrefix(cs.Image, "harmony.invalid/")
		if !ready {
			t.Fatalf("container %s: ready %v, state %+v, image %s", cs.Name, cs.Ready, cs.State, cs.Image)
		}
	}
	images, err := m.c.Node.Images(context.Background())
	if err != nil || !slices.Contains(images, p.Spec.Containers[0].Image) {
		t.Fatalf("the node's containerd lists %q (%v), not %s", images, err, p.Spec.Containers[0].Image)
	}

	addr := m.forward(project)
	body, err := get(t, "http://"+addr+"/")
	answered := time.Since(start)
	if err != nil || body != "payload: hello from "+p.Name+"\n" {
		t.Fatalf("GET through the port-forward: %q, %v", body, err)
	}
	t.Logf("from harmony launch to the first answered request through the port-forward: %s", answered.Round(time.Millisecond))

	start = time.Now()
	again, code := m.run(project, m.bin, "launch")
	relaunch := time.Since(start)
	if code != 0 || !strings.Contains(again, "0 created, 0 updated, 2 unchanged") || strings.Contains(again, "building ") || strings.Contains(again, "loading ") {
		t.Fatalf("launch again with no change (exit %d) built, loaded or changed something:\n%s", code, again)
	}
	t.Logf("no-change re-launch on the real node: %s", relaunch.Round(time.Millisecond))
	if now := m.pods(ns); len(now) != 1 || now[0].UID != p.UID {
		t.Errorf("a no-change launch replaced the pod")
	}

	if len(m.containersOf(ns)) == 0 {
		t.Fatal("containerd has no container of the launched pod")
	}
	out, code = m.run(project, m.bin, "down")
	if code != 0 {
		t.Fatalf("harmony down (exit %d):\n%s", code, out)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for len(m.containersOf(ns)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("two minutes after harmony down, containerd still has %q", m.containersOf(ns))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestRealNodeCrashAndLostImage: a launch whose image exits at once ends with the not-ready
// report naming CrashLoopBackOff and the container's last log line (read from the real kubelet);
// an image harmony built that the node then lost is reported as such, and launching again loads
// it again and the pod runs.
func TestRealNodeCrashAndLostImage(t *testing.T) {
	dockertest.Need(t)
	m := newMachine(t)
	project := m.webProject("lost")
	// A second deployment of the same image, made to exit at once.
	writeFiles(t, project, map[string]string{"k8s/crash.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: crash}
spec:
  selector: {matchLabels: {app: crash}}
  template:
    metadata: {labels: {app: crash}}
    spec:
      containers:
      - name: crash
        image: lost-web
        command: ["/server", "--fail"]
`})
	out, code := m.run(project, m.bin, "launch", "--timeout", "40s")
	if code == 0 {
		t.Fatalf("a launch whose container exits at once succeeded:\n%s", out)
	}
	for _, want := range []string{"CrashLoopBackOff", "log crash-", "fatal[0m: this step fails on purpose"} {
		if !strings.Contains(out, want) {
			t.Errorf("the not-ready report lacks %q:\n%s", want, out)
		}
	}
	if t.Failed() {
		return
	}

	// The node loses the image; the web pod is replaced and cannot pull it.
	if err := os.Remove(filepath.Join(project, "k8s", "crash.yaml")); err != nil {
		t.Fatal(err)
	}
	if out, code := m.run(project, m.bin, "launch"); code != 0 {
		t.Fatalf("launch without the crashing deployment (exit %d):\n%s", code, out)
	}
	image := m.pods("lost")[0].Spec.Containers[0].Image
	ctx := context.Background()
	if _, err := m.c.Node.CtrRun(ctx, nil, "images", "rm", image); err != nil {
		t.Fatal(err)
	}
	if err := m.c.Client.CoreV1().Pods("lost").DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "app=web"}); err != nil {
		t.Fatal(err)
	}
	// harmony status says why the replaced pod does not run.
	want := "the runtime no longer has " + image + ", an image harmony built and loaded"
	out, _ = m.run(project, m.bin, "status")
	for deadline := time.Now().Add(2 * time.Minute); !strings.Contains(out, want) && time.Now().Before(deadline); {
		time.Sleep(time.Second)
		out, _ = m.run(project, m.bin, "status")
	}
	if !strings.Contains(out, want) {
		t.Fatalf("harmony status does not say the runtime lost the image:\n%s", out)
	}
	// A launch of harmony's runtime checks the node has the image and loads it again.
	out, code = m.run(project, m.bin, "launch")
	if code != 0 || !strings.Contains(out, "loaded") {
		t.Fatalf("launch after the node lost the image (exit %d):\n%s", code, out)
	}
	images, err := m.c.Node.Images(ctx)
	if err != nil || !slices.Contains(images, image) {
		t.Fatalf("launching again did not load %s again: %q %v", image, images, err)
	}
	for _, p := range m.pods("lost") {
		if p.Status.Phase != corev1.PodRunning {
			t.Errorf("pod %s is %s after launching again", p.Name, p.Status.Phase)
		}
	}
}

// background runs harmony in the background (until the test ends, when it is interrupted as
// Ctrl-C would) and returns its output, line by line.
func (m *machine) background(dir string, args ...string) <-chan string {
	m.t.Helper()
	cmd := exec.Command(m.bin, args...)
	cmd.Env, cmd.Dir = m.env, dir
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		m.t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	lines := make(chan string, 1024)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	m.t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			m.t.Errorf("harmony %s did not end on Ctrl-C", strings.Join(args, " "))
		}
	})
	return lines
}

// waitLine reads lines until one matches re (within a minute) and returns its submatches.
func waitLine(t *testing.T, lines <-chan string, re *regexp.Regexp) []string {
	t.Helper()
	var seen []string
	deadline := time.After(time.Minute)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("ended before a line matching %s:\n%s", re, strings.Join(seen, "\n"))
			}
			seen = append(seen, l)
			if m := re.FindStringSubmatch(l); m != nil {
				return m
			}
		case <-deadline:
			t.Fatalf("no line matching %s in a minute:\n%s", re, strings.Join(seen, "\n"))
		}
	}
}

// harmony forward answers on the URL it prints, through the API server and the real kubelet,
// and again once the pod was replaced; harmony logs -f prints the pod's lines and its
// replacement's.
func TestRealNodeForwardAndLogs(t *testing.T) {
	dockertest.Need(t)
	m := newMachine(t)
	project := m.webProject("forwarded")
	ns := "forwarded"
	if out, code := m.run(project, m.bin, "launch"); code != 0 {
		t.Fatalf("harmony launch (exit %d):\n%s", code, out)
	}
	first := m.pods(ns)
	if len(first) != 1 {
		t.Fatalf("pods %d", len(first))
	}
	fwd := m.background(project, "forward")
	url := waitLine(t, fwd, regexp.MustCompile(`^svc/web +(http://localhost:\d+) +forwarded \(port 8080\)$`))[1]
	if body, err := get(t, url+"/"); err != nil || body != "payload: hello from "+first[0].Name+"\n" {
		t.Fatalf("GET %s: %q, %v", url, body, err)
	}
	logs := m.background(project, "logs", "-f")
	waitLine(t, logs, regexp.MustCompile(`^deployment/web \| payload: serving on :8080$`))

	// The pod is replaced (as a rollout or a lost node would): the same URL reaches the new one,
	// and the logs follow it.
	if err := m.c.Client.CoreV1().Pods(ns).Delete(context.Background(), first[0].Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitLine(t, logs, regexp.MustCompile(`^deployment/web \| payload: serving on :8080$`))
	deadline := time.Now().Add(2 * time.Minute)
	for {
		body, err := get(t, url+"/")
		if err == nil && strings.HasPrefix(body, "payload: hello from ") && body != "payload: hello from "+first[0].Name+"\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the forwarded URL never reached the new pod: %q, %v", body, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
