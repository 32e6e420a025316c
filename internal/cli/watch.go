package cli

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/NationTech/harmony-agent/launch"
)

// watchRun is harmony launch --watch: the launch, then a launch on each change, one status line
// per launch after the first, the services forwarded (unless --no-forward), until Ctrl-C, which
// leaves the app running.
func watchRun(ctx context.Context, g *globalOptions, opts *launchOptions, req launch.Request, sink launch.Sink) error {
	var (
		mu       sync.Mutex
		fwd      *launch.Forwarder
		fwdStop  context.CancelFunc
		services string // the forwarded services, to forward again when they change
		first    = true
		down     = "harmony down" // the command that removes the app, as the user addressed it
	)
	stopForward := func() {
		if fwd != nil {
			fwdStop()
			fwd = nil
		}
	}
	defer func() { mu.Lock(); stopForward(); mu.Unlock() }()
	forward := func(res *launch.Result) {
		if opts.NoForward || res == nil || res.Engine == nil || res.Project == nil {
			return
		}
		f, err := res.Engine.Forwards(ctx, res.Project)
		if err != nil {
			fmt.Fprintf(g.Stderr, "harmony: forward: %s\n", printable(err.Error()))
			return
		}
		var names []string
		for _, fw := range f.Forwards {
			names = append(names, fmt.Sprintf("%s:%d:%v", fw.Service, fw.Port, fw.Host))
		}
		key := strings.Join(names, ",")
		mu.Lock()
		defer mu.Unlock()
		if fwd != nil && key == services {
			f.Close() // the same services: the forwards running stay
			return
		}
		stopForward()
		if len(f.Forwards) == 0 {
			f.Close()
			return
		}
		fctx, cancel := context.WithCancel(ctx)
		fwd, fwdStop, services = f, cancel, key
		printForwards(g.Stdout, f.Forwards)
		go f.Serve(fctx, g.Stderr)
	}
	cycle := func(changed []string, res *launch.Result, err error, took time.Duration, superseded bool) {
		if res != nil && res.Project != nil {
			down = res.Project.Command("down")
		}
		if first {
			first = false
			switch {
			case err != nil:
				fmt.Fprintf(g.Stderr, "harmony: error: %s\n", printable(err.Error()))
			case res != nil && res.Report != nil:
				launch.PrintSummary(sink.Progress, res.Report, res.Project.Command("forward"))
			}
			forward(res)
			fmt.Fprintln(g.Stderr, "watching for changes (Ctrl-C stops watching; the app keeps running)")
			return
		}
		fmt.Fprintln(g.Stderr, cycleLine(changed, res, err, took, superseded))
		if err == nil {
			forward(res)
		}
	}
	err := launch.Watch(ctx, req, launchHost(g, opts), sink, launch.WatchOptions{Cycle: cycle, QuietAfterFirst: true})
	if err != nil {
		return err
	}
	fmt.Fprintf(g.Stderr, "stopped watching: the app keeps running (%s removes it)\n", down)
	return ctx.Err() // Ctrl-C: exit 130
}

// cycleLine says in one line what a launch of the watch loop did: the files that changed, the
// images rebuilt, the objects changed, whether it is ready (or why not), the time it took.
func cycleLine(changed []string, res *launch.Result, err error, took time.Duration, superseded bool) string {
	what := "changed " + strings.Join(changed, ", ")
	if len(changed) > 3 {
		what = fmt.Sprintf("changed %s and %d more", strings.Join(changed[:3], ", "), len(changed)-3)
	}
	at := time.Now().Format("15:04:05")
	if superseded {
		return fmt.Sprintf("%s %s: cut short by a newer change", at, printable(what))
	}
	var parts []string
	if res != nil {
		var built []string
		for _, im := range res.Images {
			if im.Built {
				built = append(built, im.Image)
			}
		}
		if len(built) > 0 {
			parts = append(parts, "rebuilt "+strings.Join(built, ", "))
		}
		if res.Report != nil {
			counts := map[launch.Action]int{}
			for _, s := range res.Report.Plan {
				counts[s.Action]++
			}
			parts = append(parts, fmt.Sprintf("%d created, %d updated, %d pruned", counts[launch.Create], counts[launch.Update], counts[launch.Prune]))
		}
	}
	switch {
	case err != nil:
		parts = append(parts, "failed: "+err.Error()+"; what ran before keeps running")
	case res != nil && res.Report != nil && res.Report.Ready:
		parts = append(parts, "ready")
	}
	return printable(fmt.Sprintf("%s %s: %s (%s)", at, what, strings.Join(parts, "; "), took.Round(10*time.Millisecond)))
}
