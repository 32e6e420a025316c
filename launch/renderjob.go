package launch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// Rendering in a process of its own. A repository's templates and kustomizations are programs:
// Bounded stops one that loops or grows step by step, but one allocation can be larger than the
// machine's memory (a template repeating a string a billion times), and a goroutine cannot be
// bounded. So where the system can bound a process's memory (Linux's RLIMIT_AS), harmony renders
// in a child process of its own binary ("harmony __render"), with its address space limited to
// what it had at start plus the render memory: an allocation past it fails there, the child
// dies, and the launch says which limit was passed and applies nothing. The child also ends the
// moment the launch is interrupted or its time is up (it is killed), instead of rendering on in
// the background. The child resolves and discovers the project itself from the same selection
// and folder, so nothing but plain data crosses.

// RenderChildCommand is the hidden command that runs a render job read from stdin.
const RenderChildCommand = "__render"

// RenderJob is one rendering: the project's manifests, or its chart.
type RenderJob struct {
	// Dir is the working folder the selection is relative to.
	Dir       string    `json:"dir"`
	Selection Selection `json:"selection"`
	// Chart renders the chart; else the manifests.
	Chart  bool          `json:"chart,omitempty"`
	Render RenderOptions `json:"render"`
	// ChartOptions: its Cluster and Out stay in the launch's process; the child reaches the
	// cluster through Cluster (RunChild serves it).
	ChartOptions ChartOptions   `json:"chartOptions"`
	Cluster      *ClusterConfig `json:"cluster,omitempty"`
	Timeout      time.Duration  `json:"timeout"`
	MaxMemory    uint64         `json:"maxMemory"`
	MaxObjects   int            `json:"maxObjects"`
}

// ClusterConfig is how the child reaches the cluster: through a read-only proxy the launch
// serves on a Unix socket in a folder of its own (serveCluster). The launch keeps the
// credentials, the kubeconfig's proxy and exec plugins (which may ask on the terminal); the
// child gets no credential, and can only read.
type ClusterConfig struct {
	Socket string  `json:"socket"`
	QPS    float32 `json:"qps,omitempty"`
	Burst  int     `json:"burst,omitempty"`
}

func (c *ClusterConfig) rest() *rest.Config {
	if c == nil {
		return nil
	}
	sock := c.Socket
	return &rest.Config{Host: "http://harmony-render", QPS: c.QPS, Burst: c.Burst, Timeout: 30 * time.Second,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}
}

// serveCluster serves cfg's cluster, read-only (GET and HEAD), on a Unix socket in a new
// private folder, for a render child. stop ends it and removes the folder.
func serveCluster(cfg *rest.Config) (*ClusterConfig, func(), error) {
	target, err := url.Parse(cfg.Host)
	if err != nil {
		return nil, nil, fmt.Errorf("the cluster's address %q: %w", cfg.Host, err)
	}
	if target.Scheme == "" {
		target.Scheme = "https"
	}
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "harmony-render-")
	if err != nil {
		return nil, nil, err
	}
	sock := filepath.Join(dir, "api")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = target.Host
		},
		Transport: rt,
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				http.Error(w, "a rendering only reads the cluster", http.StatusForbidden)
				return
			}
			proxy.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }()
	return &ClusterConfig{Socket: sock, QPS: cfg.QPS, Burst: cfg.Burst}, func() {
		_ = srv.Close()
		_ = os.RemoveAll(dir)
	}, nil
}

// RenderResult is what a job rendered: Objects for manifests, Chart for a chart.
type RenderResult struct {
	Objects []Object
	Chart   *Rendered
	// Warnings are kustomize's, for the launch to print.
	Warnings []string
}

// limits are the job's render limits, with the project's command for the hints.
func (j RenderJob) limits(p *Project) RenderLimits {
	return RenderLimits{Timeout: j.Timeout, MaxMemory: j.MaxMemory, MaxObjects: j.MaxObjects,
		Command: func(flags ...string) string { return p.Command("launch", flags...) }}
}

// Run renders the job in this process, within its limits (Bounded).
func (j RenderJob) Run(ctx context.Context, progress io.Writer) (RenderResult, error) {
	proj, err := Resolve(j.Selection)
	if err != nil {
		return RenderResult{}, err
	}
	src, err := proj.Discover()
	if err != nil {
		return RenderResult{}, err
	}
	l := j.limits(proj)
	if !j.Chart {
		var mu sync.Mutex
		var warnings []string
		ro := j.Render
		ro.Warn = func(w string) {
			mu.Lock()
			defer mu.Unlock()
			warnings = append(warnings, w)
		}
		objs, err := Bounded(ctx, l, "the manifests", func(ctx context.Context) ([]Object, error) {
			return Render(ctx, src, ro)
		}, func(o []Object) int { return len(o) })
		mu.Lock()
		defer mu.Unlock()
		return RenderResult{Objects: objs, Warnings: append([]string(nil), warnings...)}, err
	}
	if src.Chart == nil {
		return RenderResult{}, nil
	}
	o := j.ChartOptions
	if j.Cluster != nil {
		o.Cluster = j.Cluster.rest() // in the child; in the launch's process ChartOptions has it
	}
	o.Out = progress
	r, err := Bounded(ctx, l, "the chart", func(ctx context.Context) (*Rendered, error) {
		return RenderChart(ctx, src, o)
	}, func(r *Rendered) int {
		if r == nil {
			return 0
		}
		return len(r.Objects) + len(r.Hooks)
	})
	return RenderResult{Chart: r}, err
}

// The child's answer: progress lines, then one result or error line, each a JSON object.
type childLine struct {
	Progress string      `json:"progress,omitempty"`
	Result   *wireResult `json:"result,omitempty"`
	Error    *wireError  `json:"error,omitempty"`
}

type wireObject struct {
	Object json.RawMessage `json:"object"`
	Origin string          `json:"origin"`
}

type wireHook struct {
	wireObject
	Events         []string `json:"events,omitempty"`
	Weight         int      `json:"weight,omitempty"`
	DeletePolicies []string `json:"deletePolicies,omitempty"`
}

type wireResult struct {
	Objects  []wireObject `json:"objects,omitempty"`
	Chart    *wireChart   `json:"chart,omitempty"`
	Warnings []string     `json:"warnings,omitempty"`
}

type wireChart struct {
	Objects []wireObject `json:"objects,omitempty"`
	Hooks   []wireHook   `json:"hooks,omitempty"`
	Info    *ChartInfo   `json:"info,omitempty"`
}

// wireError is an error with its hints and the kinds the launch tells apart.
type wireError struct {
	Message string   `json:"message"`
	Hints   []string `json:"hints,omitempty"`
	Kinds   []string `json:"kinds,omitempty"`
}

// errorKinds are the errors a launch tells apart (errors.Is), by name across the pipe.
var errorKinds = map[string]error{
	"render-limit":       ErrRenderLimit,
	"bad-manifest":       ErrBadManifest,
	"ambiguous":          ErrAmbiguous,
	"nothing-found":      ErrNothingFound,
	"chart-dependencies": ErrChartDependencies,
	"outside":            ErrOutside,
	"kustomize-helm":     ErrKustomizeHelm,
	"not-exist":          os.ErrNotExist,
	"canceled":           context.Canceled,
}

func toWireObject(o Object) (wireObject, error) {
	b, err := o.MarshalJSON()
	return wireObject{Object: b, Origin: o.Origin}, err
}

func fromWireObject(w wireObject) (Object, error) {
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(w.Object); err != nil {
		return Object{}, err
	}
	return Object{Unstructured: u, Origin: w.Origin}, nil
}

func toWireObjects(objs []Object) ([]wireObject, error) {
	var out []wireObject
	for _, o := range objs {
		wo, err := toWireObject(o)
		if err != nil {
			return nil, err
		}
		out = append(out, wo)
	}
	return out, nil
}

func fromWireObjects(ws []wireObject) ([]Object, error) {
	var out []Object
	for _, w := range ws {
		o, err := fromWireObject(w)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

func toWire(r RenderResult) (*wireResult, error) {
	w := &wireResult{Warnings: r.Warnings}
	var err error
	if w.Objects, err = toWireObjects(r.Objects); err != nil || r.Chart == nil {
		return w, err
	}
	w.Chart = &wireChart{Info: r.Chart.Chart}
	if w.Chart.Objects, err = toWireObjects(r.Chart.Objects); err != nil {
		return nil, err
	}
	for _, h := range r.Chart.Hooks {
		wo, err := toWireObject(h.Object)
		if err != nil {
			return nil, err
		}
		w.Chart.Hooks = append(w.Chart.Hooks, wireHook{wireObject: wo, Events: h.Events, Weight: h.Weight, DeletePolicies: h.DeletePolicies})
	}
	return w, nil
}

func fromWire(w *wireResult) (RenderResult, error) {
	r := RenderResult{Warnings: w.Warnings}
	var err error
	if r.Objects, err = fromWireObjects(w.Objects); err != nil || w.Chart == nil {
		return r, err
	}
	r.Chart = &Rendered{Chart: w.Chart.Info}
	if r.Chart.Objects, err = fromWireObjects(w.Chart.Objects); err != nil {
		return r, err
	}
	for _, wh := range w.Chart.Hooks {
		o, err := fromWireObject(wh.wireObject)
		if err != nil {
			return r, err
		}
		r.Chart.Hooks = append(r.Chart.Hooks, Hook{Object: o, Events: wh.Events, Weight: wh.Weight, DeletePolicies: wh.DeletePolicies})
	}
	return r, nil
}

func toWireError(err error) *wireError {
	w := &wireError{Message: err.Error(), Hints: hint.Of(err)}
	for name, kind := range errorKinds {
		if errors.Is(err, kind) {
			w.Kinds = append(w.Kinds, name)
		}
	}
	return w
}

// childError is an error the child reported: its text, its hints and its kinds.
type childError struct {
	msg   string
	kinds []error
}

func (e *childError) Error() string { return e.msg }

func (e *childError) Is(target error) bool {
	for _, k := range e.kinds {
		if k == target {
			return true
		}
	}
	return false
}

func fromWireError(w *wireError) error {
	e := &childError{msg: w.Message}
	for _, k := range w.Kinds {
		if kind, ok := errorKinds[k]; ok {
			e.kinds = append(e.kinds, kind)
		}
	}
	if len(w.Hints) == 0 {
		return e
	}
	return hint.With(e, w.Hints...)
}

// progressWriter sends each line written to it to the parent as a progress line.
type progressWriter struct {
	enc *json.Encoder
	buf bytes.Buffer
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.buf.Write(b)
	for {
		line, err := p.buf.ReadString('\n')
		if err != nil {
			p.buf.WriteString(line) // not a whole line yet
			return len(b), nil
		}
		if err := p.enc.Encode(childLine{Progress: line}); err != nil {
			return 0, err
		}
	}
}

// ServeRenderChild runs the job on in as the child: it limits its own memory first, then writes
// progress lines and one result or error line to out. It returns the exit code.
func ServeRenderChild(ctx context.Context, in io.Reader, out io.Writer) int {
	var j RenderJob
	if err := json.NewDecoder(io.LimitReader(in, 96<<20)).Decode(&j); err != nil { // --values files included
		fmt.Fprintf(os.Stderr, "harmony %s: %v\n", RenderChildCommand, err)
		return 2
	}
	if err := os.Chdir(j.Dir); err != nil {
		fmt.Fprintf(os.Stderr, "harmony %s: %v\n", RenderChildCommand, err)
		return 2
	}
	limitMemory(j.MaxMemory)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	pw := &progressWriter{enc: enc}
	r, err := j.Run(ctx, pw)
	if pw.buf.Len() > 0 { // a last line without its newline
		_ = enc.Encode(childLine{Progress: pw.buf.String() + "\n"})
	}
	line := childLine{}
	if err == nil {
		line.Result, err = toWire(r)
	}
	if err != nil {
		line.Result, line.Error = nil, toWireError(err)
	}
	if err := enc.Encode(line); err != nil {
		return 1
	}
	return 0
}

// RunChild runs the job in a child process of exe (this harmony) and returns what it rendered.
// progress receives the child's progress lines and its warnings. ctx's end (Ctrl-C) and the
// job's time limit kill the child and everything it started; a child that dies of its memory
// limit, or whose answer outgrows it, is reported as the render limit it passed. cluster, when
// set, is the cluster a chart's lookup and Capabilities read, served read-only to the child.
func RunChild(ctx context.Context, exe string, j RenderJob, cluster *rest.Config, progress io.Writer, command func(flags ...string) string) (RenderResult, error) {
	l := RenderLimits{Timeout: j.Timeout, MaxMemory: j.MaxMemory, MaxObjects: j.MaxObjects, Command: command}.withDefaults()
	j.Timeout, j.MaxMemory, j.MaxObjects = l.Timeout, l.MaxMemory, l.MaxObjects
	if cluster != nil {
		cc, stop, err := serveCluster(cluster)
		if err != nil {
			return RenderResult{}, err
		}
		defer stop()
		j.Cluster = cc
	}
	in, err := json.Marshal(j)
	if err != nil {
		return RenderResult{}, err
	}
	what := "the manifests"
	if j.Chart {
		what = "the chart"
	}
	// The child stops itself at its time limit; this one, a little later, is for a child
	// that cannot.
	cctx, cancel := context.WithTimeout(ctx, l.Timeout+10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, exe, RenderChildCommand)
	cmd.Args[0] = "harmony"
	cmd.Dir = j.Dir
	cmd.Stdin = bytes.NewReader(in)
	setChildAttrs(cmd) // its own process group, killed whole
	cmd.WaitDelay = 2 * time.Second
	stderr := &childStderr{out: progress}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return RenderResult{}, err
	}
	if err := cmd.Start(); err != nil {
		return RenderResult{}, fmt.Errorf("start the renderer: %w", err)
	}
	// The answer is read as it comes, within the render memory: a rendering that outgrows
	// it is stopped, not read into this process.
	capped := &capReader{r: stdout, left: int64(l.MaxMemory)}
	dec := json.NewDecoder(capped)
	var last childLine
	var readErr error
	for {
		var line childLine
		if err := dec.Decode(&line); err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = err
				cancel() // kill the child: its answer cannot be read
			}
			break
		}
		if line.Progress != "" {
			if progress != nil {
				io.WriteString(progress, Sanitize(strings.TrimSuffix(line.Progress, "\n"))+"\n")
			}
			continue
		}
		last = line
	}
	werr := cmd.Wait()
	stderr.flush()
	switch {
	case ctx.Err() != nil:
		return RenderResult{}, ctx.Err()
	case capped.over:
		return RenderResult{}, l.memory(what)
	case cctx.Err() != nil && readErr == nil:
		return RenderResult{}, l.timeout(what)
	case last.Error != nil:
		return RenderResult{}, fromWireError(last.Error)
	case last.Result != nil && werr == nil && readErr == nil:
		return fromWire(last.Result)
	case stderr.outOfMemory:
		return RenderResult{}, l.memory(what)
	}
	var ee *exec.ExitError
	if errors.As(werr, &ee) && !ee.Exited() && readErr == nil {
		// Killed by a signal this launch did not send: the system's out-of-memory killer, most
		// likely, on a machine with less free memory than the limit.
		return RenderResult{}, hint.With(fmt.Errorf("%w: %s was stopped by the system (%v), most likely for want of memory", ErrRenderLimit, what, werr),
			fmt.Sprintf("this machine has less free memory than the render limit (%d MiB): free some, or find what in the project grows so", l.MaxMemory>>20),
			"to stop at a lower limit, with this error: "+l.Command("--render-memory", fmt.Sprint(l.MaxMemory>>21)))
	}
	if readErr != nil {
		return RenderResult{}, fmt.Errorf("rendering %s: the renderer's answer cannot be read: %v", what, readErr)
	}
	if msg := stderr.crash(); msg != "" {
		return RenderResult{}, fmt.Errorf("rendering %s failed: %v: %s", what, werr, msg)
	}
	return RenderResult{}, fmt.Errorf("rendering %s failed: %v", what, werr)
}

// childStderr passes the child's own messages (a chart's warnings) on to the user, line by
// line, sanitised, until the Go runtime reports a crash; the crash's first lines are kept for
// the error (never its stacks), and whether it was the memory limit.
type childStderr struct {
	mu          sync.Mutex
	out         io.Writer
	partial     []byte
	crashed     bool
	crashLines  []string
	outOfMemory bool
	passed      int
}

// The Go runtime's words for an allocation its address space cannot hold.
var oomLines = []string{"fatal error: out of memory", "fatal error: runtime: out of memory", "runtime: out of memory:"}

func (c *childStderr) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			if len(c.partial) > 64<<10 {
				c.line(string(c.partial))
				c.partial = c.partial[:0]
			}
			return len(p), nil
		}
		c.line(string(c.partial[:i]))
		c.partial = c.partial[i+1:]
	}
}

func (c *childStderr) line(l string) {
	for _, m := range oomLines {
		if strings.HasPrefix(l, m) {
			c.outOfMemory = true
		}
	}
	if !c.crashed && (strings.HasPrefix(l, "fatal error:") || strings.HasPrefix(l, "panic:") || strings.HasPrefix(l, "runtime:")) {
		c.crashed = true
	}
	switch {
	case c.crashed:
		if len(c.crashLines) < 2 && strings.TrimSpace(l) != "" {
			c.crashLines = append(c.crashLines, Sanitize(l))
		}
	case c.out != nil && c.passed < 200:
		c.passed++
		fmt.Fprintln(c.out, Sanitize(l))
	}
}

func (c *childStderr) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.partial) > 0 {
		c.line(string(c.partial))
		c.partial = nil
	}
}

// crash is the first lines of the runtime's report of a crash ("" when none).
func (c *childStderr) crash() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.crashLines, "; ")
}
