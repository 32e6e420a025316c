// Package preflight checks the machine before harmony installs a runtime on it, and tells the
// user, for each thing in the way, the one command that fixes it: `harmony doctor` runs every
// check, `harmony bootstrap` the blocking ones before it downloads anything. Checks read the
// machine through Host only (its files under a root folder, its ports, its environment, its
// Docker engine), so each is tested on a fake host. No check downloads anything or changes the
// machine.
package preflight

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/NationTech/harmony-agent/bootstrap"
)

// Result is what a check found.
type Result string

// The results, from best to worst (Skipped: the check does not apply here, or could not look).
const (
	OK      Result = "ok"
	Warn    Result = "warn"
	Fail    Result = "fail"
	Skipped Result = "skipped"
)

// Finding is the outcome of one check.
type Finding struct {
	// ID names the check, as --skip-checks and `harmony doctor ID` take it.
	ID     string `json:"id"`
	Title  string `json:"title"`
	Result Result `json:"result"`
	// Seen is what the check saw on this machine.
	Seen string `json:"seen"`
	// Why says why it matters (set for warnings and failures).
	Why string `json:"why,omitempty"`
	// Fix is the command that fixes it (a sentence where no command exists).
	Fix string `json:"fix,omitempty"`
	// Blocking is true when a failure stops `harmony bootstrap` before it downloads anything.
	Blocking bool `json:"blocking"`
	// NeedsRoot names what the check would read as root and could not read as this user.
	NeedsRoot string `json:"needsRoot,omitempty"`
}

// Report is the outcome of a run.
type Report struct {
	// Runtime is the runtime the checks are for: "k3s" or "k3d".
	Runtime  string    `json:"runtime"`
	Platform string    `json:"platform"`
	Checks   []Finding `json:"checks"`
}

// Failed returns the checks that failed.
func (r Report) Failed() []Finding {
	var out []Finding
	for _, f := range r.Checks {
		if f.Result == Fail {
			out = append(out, f)
		}
	}
	return out
}

// Count returns how many checks had result res.
func (r Report) Count(res Result) int {
	n := 0
	for _, f := range r.Checks {
		if f.Result == res {
			n++
		}
	}
	return n
}

// Port is a TCP port the runtime listens on.
type Port struct {
	Number int
	// What listens there, e.g. "the API server".
	What string
	// Needed is true when the runtime cannot start without it (a failure, not a warning).
	Needed bool
}

// Options say which checks to run and what for.
type Options struct {
	// Runtime is "k3s" or "k3d".
	Runtime string
	// GOOS is the platform the fixes are for (default: this one).
	GOOS string
	// Only runs these checks (all when empty); Skip leaves these out ("all": every one).
	Only, Skip []string
	// Blocking runs only the checks whose failure stops a bootstrap.
	Blocking bool
	// Ports replaces the runtime's ports (k3s: 6443, 10250, 80, 443; k3d: 80 and 443 on localhost).
	Ports []Port
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// check is one check: its id, what it needs and how it runs.
type check struct {
	id, title string
	// runtime is "k3s" or "k3d" when the check is about that runtime only.
	runtime string
	// blocking: a failure stops a bootstrap.
	blocking bool
	run      func(ctx context.Context, m *machine) Finding
}

// checks are every check, in the order they are shown: install → runtime → builder → launch.
var checks = []check{
	{id: "mirror", title: "download mirror", run: checkMirror},
	{id: "proxy", title: "proxy variables", blocking: true, run: checkProxy},
	{id: "clock", title: "clock", run: checkClock},
	{id: "home", title: "harmony's data folder", run: checkHome},
	{id: "init-system", title: "init system", runtime: "k3s", run: checkInit},
	{id: "cgroups", title: "cgroups", runtime: "k3s", blocking: true, run: checkCgroups},
	{id: "kernel-modules", title: "kernel modules", runtime: "k3s", blocking: true, run: checkModules},
	{id: "sysctls", title: "kernel settings", runtime: "k3s", run: checkSysctls},
	{id: "selinux", title: "SELinux", runtime: "k3s", blocking: true, run: checkSELinux},
	{id: "apparmor", title: "AppArmor", runtime: "k3s", run: checkAppArmor},
	{id: "nm-cloud-setup", title: "nm-cloud-setup", runtime: "k3s", blocking: true, run: checkNMCloudSetup},
	{id: "firewall", title: "firewall", runtime: "k3s", run: checkFirewall},
	// Not blocking: bootstrap diagnoses the engine itself before it pulls anything.
	{id: "docker", title: "Docker engine", runtime: "k3d", run: checkDocker},
	{id: "docker-resources", title: "Docker's memory and CPUs", runtime: "k3d", blocking: true, run: checkDockerResources},
	{id: "other-kubernetes", title: "other Kubernetes", blocking: true, run: checkOtherKubernetes},
	{id: "ports", title: "ports", blocking: true, run: checkPorts},
	{id: "disk", title: "disk space", blocking: true, run: checkDisk},
	{id: "kubeconfig", title: "kubeconfig", run: checkKubeconfig},
}

// IDs returns every check's id, in order.
func IDs() []string {
	ids := make([]string, len(checks))
	for i, c := range checks {
		ids[i] = c.id
	}
	return ids
}

// Known reports whether id names a check.
func Known(id string) bool { return slices.Contains(IDs(), id) }

// For returns the runtime check id is about ("k3s" or "k3d"), or "" when it is about both.
func For(id string) string {
	for _, c := range checks {
		if c.id == id {
			return c.runtime
		}
	}
	return ""
}

// machine is what a run knows about the host: the host itself, the options, and what several
// checks read once.
type machine struct {
	host Host
	opts Options
	// paths are the runtime's system paths on this host.
	paths bootstrap.Paths
	// installed is true when harmony's runtime is installed (its ports are its own).
	installed func() bool
	engine    func() (*Engine, error)
	procs     func() []process
}

// Run runs the checks opts selects on h, concurrently, and returns their findings in order.
func Run(ctx context.Context, h Host, opts Options) Report {
	if opts.GOOS == "" {
		opts.GOOS = runtime.GOOS
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m := &machine{host: h, opts: opts, paths: bootstrap.Paths{Root: h.Root()}}
	m.engine = sync.OnceValues(func() (*Engine, error) {
		ectx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		return h.Engine(ectx)
	})
	m.procs = sync.OnceValue(func() []process { return processes(h.Root()) })
	m.installed = sync.OnceValue(func() bool {
		if opts.Runtime == "k3d" {
			e, err := m.engine()
			return err == nil && e.HarmonyNode
		}
		inst, err := (&bootstrap.K3s{Paths: m.paths}).Detect(ctx)
		return err == nil && inst.Installed
	})
	var selected []check
	for _, c := range checks {
		if (c.runtime != "" && c.runtime != opts.Runtime) || (opts.Blocking && !c.blocking) {
			continue
		}
		if (len(opts.Only) > 0 && !slices.Contains(opts.Only, c.id)) || slices.Contains(opts.Skip, c.id) || slices.Contains(opts.Skip, "all") {
			continue
		}
		selected = append(selected, c)
	}
	rep := Report{Runtime: opts.Runtime, Platform: opts.GOOS + "/" + runtime.GOARCH, Checks: make([]Finding, len(selected))}
	var wg sync.WaitGroup
	for i, c := range selected {
		wg.Go(func() {
			f := c.run(ctx, m)
			f.ID, f.Title, f.Blocking = c.id, c.title, c.blocking
			if f.Result == "" {
				f.Result = OK
			}
			rep.Checks[i] = f
		})
	}
	wg.Wait()
	return rep
}

// Error is a failed blocking check, as bootstrap reports it.
type Error struct{ Finding Finding }

func (e *Error) Error() string {
	return fmt.Sprintf("preflight check %q failed: %s", e.Finding.ID, e.Finding.Seen)
}

// ok, warn, fail and skipped build findings.
func ok(format string, a ...any) Finding { return Finding{Result: OK, Seen: fmt.Sprintf(format, a...)} }

func skipped(format string, a ...any) Finding {
	return Finding{Result: Skipped, Seen: fmt.Sprintf(format, a...)}
}

func warn(seen, why, fix string) Finding {
	return Finding{Result: Warn, Seen: seen, Why: why, Fix: fix}
}

func fail(seen, why, fix string) Finding {
	return Finding{Result: Fail, Seen: seen, Why: why, Fix: fix}
}

// list joins words for a sentence: "a", "a and b", "a, b and c".
func list(words []string) string {
	switch len(words) {
	case 0:
		return ""
	case 1:
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}
