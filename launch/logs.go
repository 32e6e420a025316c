package launch

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/cli-utils/pkg/object"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// LogOptions say which logs Logs prints.
type LogOptions struct {
	// Target is a Service or workload of the project (NAME, or KIND/NAME); empty: all of them.
	Target string
	// Follow keeps printing, following new pods as they replace old ones, until ctx ends.
	Follow bool
	// Tail is how many lines of each container's log to print first (0: all of it).
	Tail int64
}

// logSource is a Service or workload of the project and the pods it selects.
type logSource struct {
	name     string // kind/name, as the lines' prefix
	selector labels.Selector
	pod      string // a bare Pod's name
}

// maxLogLine bounds one printed log line (the rest is cut and marked).
const maxLogLine = 16 << 10

// Logs prints the logs of the pods of project p's workloads (Deployments, StatefulSets,
// DaemonSets, Jobs, bare Pods; or those a Service selects when one is named), each line prefixed
// by its workload and container. With Follow it keeps going and follows the pods that replace
// them. Lines are printed as text that cannot drive the terminal (control characters dropped).
func (e *Engine) Logs(ctx context.Context, p *Project, o LogOptions, out io.Writer) error {
	inv, err := e.loadInventory(ctx, p)
	if err != nil {
		return err
	}
	if !inv.exists {
		return e.notLaunched(ctx, p, "read its logs", "logs")
	}
	sources, err := e.logSources(ctx, inv.Objects, o.Target, p)
	if err != nil {
		return err
	}
	ns := p.Namespace
	w := &logPrinter{w: out}
	var wg sync.WaitGroup
	started := map[string]bool{} // pod UID/container
	var mu sync.Mutex
	start := func(pod *corev1.Pod) {
		src := sourceOf(sources, pod)
		if src == nil {
			return
		}
		for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
			key := string(pod.UID) + "/" + c.Name
			mu.Lock()
			seen := started[key]
			started[key] = true
			mu.Unlock()
			if seen {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				e.streamLog(ctx, pod, c.Name, src.name, o, w)
			}()
		}
	}
	pods, err := e.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	items := pods.Items
	sort.Slice(items, func(i, j int) bool { return items[i].CreationTimestamp.Before(&items[j].CreationTimestamp) })
	for i := range items {
		start(&items[i])
	}
	if !o.Follow {
		wg.Wait()
		return nil
	}
	// Follow: new pods (a rollout's, a restarted Job's) join as they appear. A watch that fails
	// or ends at once (410 Gone: its resource version is too old) waits a second and lists the
	// pods again (a fresh version, and the pods that came meanwhile), never asking again in a
	// tight loop; bookmarks keep the version fresh in a quiet namespace.
	for ctx.Err() == nil {
		began := time.Now()
		wt, err := e.client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: pods.ResourceVersion, AllowWatchBookmarks: true})
		relist := err != nil
		if err == nil {
			for ev := range wt.ResultChan() {
				if ev.Type == watch.Error {
					relist = true
					break
				}
				pod, ok := ev.Object.(*corev1.Pod)
				if !ok {
					continue
				}
				pods.ResourceVersion = pod.ResourceVersion
				if ev.Type == watch.Added || ev.Type == watch.Modified {
					start(pod)
				}
			}
			wt.Stop()
		}
		if !relist && time.Since(began) >= time.Second {
			continue // the server ended a long watch: watch again from where it was
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
		if ctx.Err() != nil {
			break
		}
		if list, err := e.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err == nil {
			pods = list
			for i := range pods.Items {
				start(&pods.Items[i])
			}
		}
	}
	wg.Wait()
	return nil
}

// logSources are the project's workloads (and Services) whose pods Logs reads: target names one.
func (e *Engine) logSources(ctx context.Context, ids object.ObjMetadataSet, target string, p *Project) ([]logSource, error) {
	var all, matched []logSource
	var names []string
	for _, id := range ids {
		src, ok := e.logSource(ctx, id)
		if !ok {
			continue
		}
		kind := strings.ToLower(id.GroupKind.Kind)
		if kind != "service" {
			all = append(all, src)
		}
		names = append(names, src.name)
		if target != "" && (strings.EqualFold(target, id.Name) || strings.EqualFold(target, kind+"/"+id.Name) ||
			kind == "service" && strings.EqualFold(target, "svc/"+id.Name)) {
			matched = append(matched, src)
		}
	}
	if target == "" {
		if len(all) == 0 {
			return nil, hint.With(errors.New("the project has no workload to read logs of"), "harmony status lists what it launched")
		}
		return all, nil
	}
	if len(matched) == 0 {
		sort.Strings(names)
		return nil, hint.With(fmt.Errorf("%s is none of the project's workloads or services", Sanitize(target)),
			"name one of: "+strings.Join(names, ", "), p.Command("logs", names[0]))
	}
	return matched[:1], nil
}

// logSource is id's pods, when it has any: a workload's selector, a Service's, a Pod itself.
func (e *Engine) logSource(ctx context.Context, id object.ObjMetadata) (logSource, bool) {
	name := strings.ToLower(id.GroupKind.Kind) + "/" + id.Name
	g, k := id.GroupKind.Group, id.GroupKind.Kind
	switch {
	case g == "" && k == "Pod":
		return logSource{name: name, pod: id.Name}, true
	case g == "" && k == "Service":
		svc, err := e.client.CoreV1().Services(id.Namespace).Get(ctx, id.Name, metav1.GetOptions{})
		if err != nil || len(svc.Spec.Selector) == 0 {
			return logSource{}, false
		}
		return logSource{name: "svc/" + id.Name, selector: labels.SelectorFromSet(svc.Spec.Selector)}, true
	case g == "apps" && (k == "Deployment" || k == "StatefulSet" || k == "DaemonSet" || k == "ReplicaSet"), g == "batch" && k == "Job":
		ri, err := e.resourceFor(id)
		if err != nil {
			return logSource{}, false
		}
		live, err := ri.Get(ctx, id.Name, metav1.GetOptions{})
		if err != nil {
			return logSource{}, false
		}
		var ls metav1.LabelSelector
		m, found, _ := unstructured.NestedMap(live.Object, "spec", "selector")
		if !found {
			return logSource{}, false
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &ls); err != nil {
			return logSource{}, false
		}
		sel, err := metav1.LabelSelectorAsSelector(&ls)
		if err != nil || sel.Empty() {
			return logSource{}, false
		}
		return logSource{name: name, selector: sel}, true
	}
	return logSource{}, false
}

func sourceOf(sources []logSource, pod *corev1.Pod) *logSource {
	for i, s := range sources {
		if s.pod != "" && s.pod == pod.Name || s.selector != nil && s.selector.Matches(labels.Set(pod.Labels)) {
			return &sources[i]
		}
	}
	return nil
}

// streamLog prints one container's log, waiting for it to start; with Follow, until it ends.
func (e *Engine) streamLog(ctx context.Context, pod *corev1.Pod, container, source string, o LogOptions, w *logPrinter) {
	prefix := fmt.Sprintf("%s %s", source, container)
	if len(pod.Spec.Containers)+len(pod.Spec.InitContainers) == 1 {
		prefix = source
	}
	prefix += " | "
	opts := &corev1.PodLogOptions{Container: container, Follow: o.Follow}
	if o.Tail > 0 {
		opts.TailLines = &o.Tail
	}
	for try := 0; ; try++ {
		rc, err := e.client.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, opts).Stream(ctx)
		if err != nil {
			// Not started yet (ContainerCreating, an image pulled): wait for it while following.
			if !o.Follow || ctx.Err() != nil || try > 120 {
				return
			}
			if _, gerr := e.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{}); gerr != nil {
				return // gone
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		s := bufio.NewScanner(rc)
		s.Buffer(make([]byte, 64<<10), 1<<20)
		for s.Scan() {
			w.line(prefix + printableLog(s.Text()))
		}
		rc.Close()
		return
	}
}

// printableLog drops the control characters of a log line (tabs stay) and cuts it at maxLogLine.
func printableLog(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r == '\t' || !(r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || hint.Invisible(r)) {
			if b.Len() >= maxLogLine {
				b.WriteString("…")
				break
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}

// logPrinter writes whole lines from several streams, one at a time.
type logPrinter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *logPrinter) line(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintln(l.w, s)
}
