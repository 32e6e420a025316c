package launch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	"sigs.k8s.io/cli-utils/pkg/object"
)

// Forward is one Service port of a project, reachable from this machine.
type Forward struct {
	Service string `json:"service"` // svc/NAME
	Port    int32  `json:"port"`    // the Service's port
	// URL is where to reach it: a forwarded local port, or the runtime's own way to the host
	// (Host true: a NodePort, a load balancer, an Ingress) which is not forwarded again.
	URL  string `json:"url"`
	Host bool   `json:"host,omitempty"`

	ns       string
	selector map[string]string
	target   intstr.IntOrString
	ln       net.Listener
}

// Forwarder forwards a project's Service ports to localhost through the API server (the
// kubelet's port-forward, as kubectl port-forward does; no kubectl). Each port keeps its local
// listener for as long as it runs; every connection goes to a ready pod of the Service as it is
// then, so a pod replaced by a rollout is followed.
type Forwarder struct {
	e        *Engine
	Forwards []*Forward
	nextID   atomic.Int64
	mu       sync.Mutex
	conns    map[string]httpstream.Connection // by pod UID
}

// Forwards lists how to reach each Service port of project p: the host URLs the runtime already
// gives (listed first, not forwarded) and a local listener for each other port, on the Service's
// own port when it is free (8000 plus it for a port below 1024 that needs root), else the next
// free one. Serve forwards them.
func (e *Engine) Forwards(ctx context.Context, p *Project) (*Forwarder, error) {
	inv, err := e.loadInventory(ctx, p)
	if err != nil {
		return nil, err
	}
	if !inv.exists {
		return nil, e.notLaunched(ctx, p, "forward its services", "forward")
	}
	var services object.ObjMetadataSet
	for _, id := range inv.Objects {
		if id.GroupKind.Group == "" && id.GroupKind.Kind == "Service" {
			services = append(services, id)
		}
	}
	f := &Forwarder{e: e, conns: map[string]httpstream.Connection{}}
	hosted := map[string]Endpoint{}
	for _, ep := range e.Endpoints(ctx, p, inv.Objects) {
		if strings.HasPrefix(ep.URL, "http://") || strings.HasPrefix(ep.URL, "https://") {
			hosted[ep.Object] = ep
			f.Forwards = append(f.Forwards, &Forward{Service: strings.SplitN(ep.Object, " ", 2)[0], URL: ep.URL, Host: true})
		}
	}
	for _, id := range services {
		if _, ok := hosted[ref(id)]; ok {
			continue
		}
		svc, err := e.client.CoreV1().Services(id.Namespace).Get(ctx, id.Name, metav1.GetOptions{})
		if err != nil {
			continue // gone since the launch: nothing to forward
		}
		if len(svc.Spec.Selector) == 0 {
			continue // no pods of its own (an ExternalName, a headless Service with manual endpoints)
		}
		for _, sp := range svc.Spec.Ports {
			if sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP {
				continue
			}
			ln, err := listenNear(int(sp.Port))
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("forward svc/%s port %d: %w", id.Name, sp.Port, err)
			}
			target := sp.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(sp.Port)
			}
			local := ln.Addr().(*net.TCPAddr).Port
			f.Forwards = append(f.Forwards, &Forward{Service: "svc/" + id.Name, Port: sp.Port, URL: portURL(sp, local),
				ns: id.Namespace, selector: svc.Spec.Selector, target: target, ln: ln})
		}
	}
	return f, nil
}

// listenNear listens on localhost at port when it is free, else at the next free one. The URLs
// say localhost, which browsers and curl try as ::1 first: the port is taken on both loopback
// addresses (::1 too where the system has it), so that nobody else on this machine can listen
// at [::1]:PORT and receive what the user sends to the app.
func listenNear(port int) (net.Listener, error) {
	if port < 1024 && os.Geteuid() != 0 {
		port += 8000
	}
	for p := port; p < port+50 && p < 65536; p++ {
		if ln, err := listenLoopback(p); err == nil {
			return ln, nil
		}
	}
	for range 10 { // a free port of the system's choosing, free on both addresses
		if ln, err := listenLoopback(0); err == nil {
			return ln, nil
		}
	}
	return nil, errors.New("no local port free on both 127.0.0.1 and ::1")
}

// listenLoopback listens at port (0: any) on 127.0.0.1 and on [::1], unless the system has no
// IPv6 loopback; a port someone holds on either is refused.
func listenLoopback(port int) (net.Listener, error) {
	v4, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	port = v4.Addr().(*net.TCPAddr).Port
	v6, err := net.Listen("tcp6", net.JoinHostPort("::1", strconv.Itoa(port)))
	switch {
	case err == nil:
		return newDualListener(v4, v6), nil
	case errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EPROTONOSUPPORT):
		return v4, nil // no IPv6 here: localhost is 127.0.0.1 only
	}
	v4.Close()
	return nil, err
}

// dualListener accepts on two listeners (127.0.0.1 and ::1, one port) as one; Addr is the first's.
type dualListener struct {
	lns   [2]net.Listener
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newDualListener(a, b net.Listener) *dualListener {
	d := &dualListener{lns: [2]net.Listener{a, b}, conns: make(chan net.Conn), done: make(chan struct{})}
	for _, ln := range d.lns {
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					d.Close()
					return
				}
				select {
				case d.conns <- c:
				case <-d.done:
					c.Close()
					return
				}
			}
		}()
	}
	return d
}

func (d *dualListener) Accept() (net.Conn, error) {
	select {
	case c := <-d.conns:
		return c, nil
	case <-d.done:
		return nil, net.ErrClosed
	}
}

func (d *dualListener) Close() error {
	d.once.Do(func() {
		close(d.done)
		for _, ln := range d.lns {
			ln.Close()
		}
	})
	return nil
}

func (d *dualListener) Addr() net.Addr { return d.lns[0].Addr() }

// portURL is http://localhost:PORT for a port that looks like HTTP (its name, its number), else
// localhost:PORT.
func portURL(sp corev1.ServicePort, local int) string {
	name := strings.ToLower(sp.Name)
	switch {
	case strings.Contains(name, "https") || sp.Port == 443 || sp.Port == 8443:
		return fmt.Sprintf("https://localhost:%d", local)
	case strings.Contains(name, "http") || strings.Contains(name, "web") || sp.AppProtocol != nil && strings.HasPrefix(*sp.AppProtocol, "http"):
		return fmt.Sprintf("http://localhost:%d", local)
	}
	switch sp.Port {
	case 80, 3000, 4000, 5000, 8000, 8080, 8081, 8888, 9000, 9090:
		return fmt.Sprintf("http://localhost:%d", local)
	}
	return fmt.Sprintf("localhost:%d", local)
}

// Serve forwards every listener until ctx ends; errs receives a line per connection that could
// not be forwarded (no ready pod, a pod that refused), never an end.
func (f *Forwarder) Serve(ctx context.Context, errs io.Writer) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	say := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(errs, format+"\n", a...)
	}
	for _, fw := range f.Forwards {
		if fw.ln == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				conn, err := fw.ln.Accept()
				if err != nil {
					return // closed
				}
				go func() {
					defer conn.Close()
					if err := f.handle(ctx, fw, conn); err != nil && ctx.Err() == nil {
						say("forward %s port %d: %s", fw.Service, fw.Port, Sanitize(err.Error()))
					}
				}()
			}
		}()
	}
	<-ctx.Done()
	f.Close()
	wg.Wait()
}

// Close stops every listener and connection.
func (f *Forwarder) Close() {
	for _, fw := range f.Forwards {
		if fw.ln != nil {
			fw.ln.Close()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for uid, c := range f.conns {
		c.Close()
		delete(f.conns, uid)
	}
}

// handle forwards one connection to a ready pod of the Service.
func (f *Forwarder) handle(ctx context.Context, fw *Forward, conn net.Conn) error {
	pod, err := f.readyPod(ctx, fw)
	if err != nil {
		return err
	}
	port, err := containerPort(pod, fw.target)
	if err != nil {
		return err
	}
	sc, err := f.connection(pod)
	if err != nil {
		return err
	}
	id := strconv.FormatInt(f.nextID.Add(1), 10)
	headers := http.Header{}
	headers.Set(corev1.StreamType, corev1.StreamTypeError)
	headers.Set(corev1.PortHeader, strconv.Itoa(int(port)))
	headers.Set(corev1.PortForwardRequestIDHeader, id)
	errorStream, err := sc.CreateStream(headers)
	if err != nil {
		f.drop(pod)
		return fmt.Errorf("pod %s: %w", pod.Name, err)
	}
	errorStream.Close() // nothing to write on it
	defer sc.RemoveStreams(errorStream)
	remoteErr := make(chan error, 1)
	go func() {
		msg, err := io.ReadAll(errorStream)
		switch {
		case err != nil:
			remoteErr <- err
		case len(msg) > 0:
			remoteErr <- fmt.Errorf("pod %s port %d: %s", pod.Name, port, strings.TrimSpace(string(msg)))
		}
		close(remoteErr)
	}()
	headers.Set(corev1.StreamType, corev1.StreamTypeData)
	dataStream, err := sc.CreateStream(headers)
	if err != nil {
		f.drop(pod)
		return fmt.Errorf("pod %s: %w", pod.Name, err)
	}
	defer sc.RemoveStreams(dataStream)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(conn, dataStream); done <- struct{}{} }()
	go func() { _, _ = io.Copy(dataStream, conn); _ = dataStream.Close(); done <- struct{}{} }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	if err, ok := <-remoteErr; ok && err != nil {
		return err
	}
	return nil
}

// readyPod is a ready, running pod of the Service, the newest first (a rollout's new pod).
func (f *Forwarder) readyPod(ctx context.Context, fw *Forward) (*corev1.Pod, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		pods, err := f.e.client.CoreV1().Pods(fw.ns).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(fw.selector).String()})
		if err != nil {
			return nil, err
		}
		items := pods.Items
		sort.Slice(items, func(i, j int) bool { return items[j].CreationTimestamp.Before(&items[i].CreationTimestamp) })
		for i := range items {
			if podReady(&items[i]) {
				return &items[i], nil
			}
		}
		// A rollout may be replacing the pod: wait for one, a while.
		if time.Now().After(deadline) {
			return nil, errors.New("no ready pod (harmony status says why)")
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func podReady(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// containerPort resolves a Service's target port in pod: a number, or a container port's name.
func containerPort(pod *corev1.Pod, target intstr.IntOrString) (int32, error) {
	if target.Type == intstr.Int {
		return target.IntVal, nil
	}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == target.StrVal {
				return p.ContainerPort, nil
			}
		}
	}
	return 0, fmt.Errorf("pod %s has no container port named %q", pod.Name, target.StrVal)
}

// connection is the streaming connection to pod's port-forward, opened once per pod (SPDY over
// WebSocket, else SPDY, as kubectl port-forward).
func (f *Forwarder) connection(pod *corev1.Pod) (httpstream.Connection, error) {
	uid := string(pod.UID)
	f.mu.Lock()
	if c := f.conns[uid]; c != nil {
		select {
		case <-c.CloseChan():
			delete(f.conns, uid)
		default:
			f.mu.Unlock()
			return c, nil
		}
	}
	f.mu.Unlock()
	req := f.e.client.CoreV1().RESTClient().Post().Resource("pods").Namespace(pod.Namespace).Name(pod.Name).SubResource("portforward")
	transport, upgrader, err := spdy.RoundTripperFor(f.e.cfg)
	if err != nil {
		return nil, err
	}
	var dialer httpstream.Dialer = spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, req.URL())
	if tunneling, err := portforward.NewSPDYOverWebsocketDialer(req.URL(), f.e.cfg); err == nil {
		dialer = portforward.NewFallbackDialer(tunneling, dialer, func(err error) bool {
			return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
		})
	}
	c, _, err := dialer.Dial(portforward.PortForwardProtocolV1Name)
	if err != nil {
		return nil, fmt.Errorf("port-forward to pod %s: %w", pod.Name, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if old := f.conns[uid]; old != nil {
		c.Close()
		return old, nil
	}
	f.conns[uid] = c
	return c, nil
}

// drop forgets pod's connection (it failed).
func (f *Forwarder) drop(pod *corev1.Pod) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.conns[string(pod.UID)]; c != nil {
		c.Close()
		delete(f.conns, string(pod.UID))
	}
}
