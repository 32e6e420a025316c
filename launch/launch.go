package launch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/cli-utils/pkg/object"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// Options of one launch.
type Options struct {
	// DryRun plans (create/update/unchanged/prune) without changing anything.
	DryRun bool
	// Adopt takes over existing objects nobody owns (no inventory mark, no Helm release, no
	// controller); without it such objects stop the launch.
	Adopt bool
	// NoWait returns right after applying.
	NoWait bool
	// Timeout bounds the readiness wait; zero means harmony.yaml's timeout, else DefaultTimeout.
	Timeout time.Duration
	// Out receives progress lines.
	Out io.Writer
	// Live redraws progress in place (a terminal).
	Live bool
	// Verbose prints every object's state as it changes while waiting; otherwise only the
	// states worth telling (a failure, an object gone), the count and the summary.
	Verbose bool
	// Hooks are a chart's Helm hooks: pre-install/pre-upgrade run before the objects are
	// applied, post-install/post-upgrade after they are ready (upgrade when the project was
	// launched before).
	Hooks []Hook
	// Allow are the risks the user allows (--allow): what the objects ask for beyond the
	// project's own namespaces (see Privilege) is applied only when allowed here or by Confirm.
	Allow []Risk
	// Confirm, when set, shows the privileges not allowed and asks the user (a terminal); nil
	// or no means nothing is applied.
	Confirm func(asked []Privilege) (bool, error)
	// Accepted are the privileges (Privilege.Key) the user allowed this project before: not
	// asked again.
	Accepted []string
}

// DefaultTimeout bounds the readiness wait when neither the user nor harmony.yaml says.
const DefaultTimeout = 5 * time.Minute

// Report is what a launch did.
type Report struct {
	Namespace string     `json:"namespace"`
	Plan      []Step     `json:"plan"`
	Conflicts []Conflict `json:"conflicts,omitempty"`
	Status    []ObjState `json:"status,omitempty"`
	Endpoints []Endpoint `json:"endpoints,omitempty"`
	Ready     bool       `json:"ready"`
	// Chart is the Helm chart launched, when there is one.
	Chart *ChartInfo `json:"chart,omitempty"`
	// Images are the images the project builds (see PrepareImages).
	Images []ImageState `json:"images,omitempty"`
	// Privileges are what the objects ask for beyond the project's own namespaces.
	Privileges []Privilege `json:"privileges,omitempty"`
}

// Namespace derives a namespace from a folder name: a valid DNS label.
func Namespace(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteRune('-')
		}
	}
	ns := strings.Trim(b.String(), "-")
	for strings.Contains(ns, "--") {
		ns = strings.ReplaceAll(ns, "--", "-")
	}
	if len(ns) > 63 {
		ns = strings.Trim(ns[:63], "-")
	}
	if ns == "" || len(validation.IsDNS1123Label(ns)) > 0 {
		return "harmony-app"
	}
	return ns
}

// Launch plans objs with a server-side dry run, then (unless DryRun) applies what changed,
// prunes what the project no longer has, and waits until everything is ready.
//
// It changes only objects that do not exist yet or carry the project's inventory mark (and,
// with Adopt, objects nobody owns); any other existing object stops the launch before anything
// is written. The inventory is written before the first object (the union of what it held and
// what this launch applies) and shrunk after pruning, so a launch failing half-way leaves
// nothing that down would not remove.
func (e *Engine) Launch(ctx context.Context, p *Project, objs []Object, o Options) (*Report, error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Timeout == 0 {
		o.Timeout = p.Timeout(DefaultTimeout)
	}
	objs, err := e.prepare(objs, p)
	if err != nil {
		return nil, err
	}
	rep := &Report{Namespace: p.Namespace}
	if err := e.waitNamespacesGone(ctx, p, namespacesOf(objs, p.Namespace), o); err != nil {
		return nil, err
	}
	inv, err := e.loadInventory(ctx, p)
	if err != nil {
		return nil, err
	}
	preHook, postHook := hookEvents(inv.exists)
	hooks, err := e.prepareHooks(o.Hooks, p, inv.exists)
	if err != nil {
		return nil, err
	}
	lives, err := e.readLive(ctx, objs)
	if err != nil {
		return nil, err
	}
	claims, conflicts := e.claims(ctx, objs, lives, p, o.Adopt)
	if len(conflicts) > 0 {
		rep.Conflicts = conflicts
		return rep, conflictError(conflicts, o.Adopt, p.Command("launch", "--adopt"))
	}
	markNamespaces(objs, claims, p)

	// What the repository asks for beyond its own namespaces is applied only when the user
	// allows it; the namespaces it creates enforce Pod Security's baseline otherwise.
	liveNS, err := e.projectNamespace(ctx, p)
	if err != nil {
		return nil, err
	}
	privs, asked := e.checkPrivileges(ctx, p, liveNS, objs, hooks, claims, o.Allow, o.Accepted)
	rep.Privileges = privs
	if len(asked) > 0 && !o.DryRun {
		yes := false
		if o.Confirm != nil {
			if yes, err = o.Confirm(asked); err != nil {
				return rep, err
			}
		}
		if !yes {
			return rep, privilegeError(asked, p, o.Confirm != nil)
		}
	}
	// Past the gate every privilege is allowed (a dry run plans as if those still asked were not).
	isHost := func(pr Privilege) bool { return pr.Risk == RiskHost }
	level := podSecurityLevel(slices.ContainsFunc(privs, isHost) && !(o.DryRun && slices.ContainsFunc(asked, isHost)))
	for _, obj := range objs {
		if object.IsNamespace(obj.Unstructured) && createdBy(obj.Unstructured, p) {
			setPodSecurity(obj.Unstructured, level)
		}
	}

	st := newStates()
	st.findUnchanged(objs, lives, inv, p)

	current := object.ObjMetadataSet{}
	var projectNS *unstructured.Unstructured // the project namespace, when the project lists it
	var early, late []Object                 // Namespaces and CRDs first, then what may need them
	for _, obj := range objs {
		current = append(current, object.UnstructuredToObjMetadata(obj.Unstructured))
		if object.IsNamespace(obj.Unstructured) && obj.GetName() == p.Namespace {
			projectNS = obj.Unstructured
		}
		if phase(obj.Unstructured) < 2 {
			early = append(early, obj)
		} else {
			late = append(late, obj)
		}
	}

	planEarly, rejected := e.plan(ctx, early, claims, o.DryRun, st)
	if len(rejected) > 0 {
		return nil, rejectedError(rejected)
	}
	rep.Plan = append(rep.Plan, planEarly...)

	// The project namespace holds the inventory and must exist for the server to check the
	// objects that go there; then the inventory records everything this launch may create,
	// before any of it is created.
	createdNS := false
	if !o.DryRun {
		if createdNS, err = e.ensureNamespace(ctx, p, liveNS, projectNS, level); err != nil {
			return nil, err
		}
		if err := e.saveInventory(ctx, p, inv, union(inv.Objects, current), nil); err != nil {
			if createdNS {
				_ = e.client.CoreV1().Namespaces().Delete(context.WithoutCancel(ctx), p.Namespace, metav1.DeleteOptions{})
			}
			return nil, err
		}
	}
	var appliedEarly []*unstructured.Unstructured
	if !o.DryRun && len(early) > 0 {
		if appliedEarly, err = e.applyChanged(ctx, early, planEarly, claims, st); err != nil {
			return nil, err
		}
		var crds []*unstructured.Unstructured
		for _, obj := range early {
			if object.IsCRD(obj.Unstructured) {
				crds = append(crds, obj.Unstructured)
			}
		}
		if err := e.waitEstablished(ctx, crds); err != nil {
			return nil, err
		}
	}
	planLate, rejected := e.plan(ctx, late, claims, o.DryRun, st)
	planHooks, rejectedHooks := e.planHooks(ctx, hooks, p)
	rejected = append(rejected, rejectedHooks...)
	if len(rejected) > 0 {
		if !o.DryRun {
			e.takeBack(ctx, p, inv, appliedEarly, createdNS)
		}
		return nil, rejectedError(rejected)
	}
	rep.Plan = append(rep.Plan, planLate...)
	rep.Plan = append(rep.Plan, planHooks...)

	for _, id := range inv.Objects {
		if !current.Contains(id) {
			rep.Plan = append(rep.Plan, e.planPrune(ctx, id, p))
		}
	}
	if o.DryRun {
		return rep, nil
	}
	// From here on the launch changes the cluster: a failure runs the SyncFail hooks.
	failed := func(err error) error {
		if ctx.Err() == nil {
			if herr := e.runHooks(ctx, hooks, SyncFailEvent, p, o.Timeout, o.Out); herr != nil {
				return fmt.Errorf("%w (and then %w)", err, herr)
			}
		}
		return err
	}
	if err := e.runHooks(ctx, hooks, preHook, p, o.Timeout, o.Out); err != nil {
		return nil, failed(err)
	}
	if err := e.applyWaves(ctx, late, planLate, claims, o, st, hooks, p); err != nil {
		return nil, failed(err)
	}
	if err := e.prune(ctx, rep.Plan); err != nil {
		return nil, err
	}
	keep := current
	for _, s := range rep.Plan {
		if s.keep {
			keep = append(keep, s.ID)
		}
	}
	if err := e.saveInventory(ctx, p, inv, keep, st); err != nil {
		return nil, err
	}
	if o.NoWait {
		return rep, e.runHooks(ctx, hooks, postHook, p, o.Timeout, o.Out)
	}
	states, err := e.Wait(ctx, current, o)
	if errors.Is(err, context.Canceled) {
		return rep, interruptedWait(states, p)
	}
	if err != nil {
		err = failed(err)
	}
	rep.Status = states
	rep.Ready = err == nil
	rep.Endpoints = e.Endpoints(ctx, p, current)
	if p.Config != nil && len(p.Config.Services) > 0 {
		rep.Endpoints = OnlyServices(rep.Endpoints, p.Config.Services)
	}
	if err != nil {
		return rep, err
	}
	return rep, e.runHooks(ctx, hooks, postHook, p, o.Timeout, o.Out)
}

// applyWaves applies the objects planned to change and runs the Sync hooks, wave by wave
// (Argo CD's sync waves, lowest first; a hook's wave is its weight): each wave's objects are
// applied, its Sync hooks run, and, when a later wave follows, its objects are waited on until
// ready (with --no-wait too: the order is what the repository asked for). Without waves it is
// one apply, then the Sync hooks.
func (e *Engine) applyWaves(ctx context.Context, objs []Object, plan []Step, claims map[object.ObjMetadata]claim, o Options, st *states, hooks []Hook, p *Project) error {
	byWave := map[int][]Object{}
	hooksAt := map[int][]Hook{}
	for _, obj := range objs {
		byWave[syncWave(obj)] = append(byWave[syncWave(obj)], obj)
	}
	for _, h := range hooks {
		if h.has(SyncEvent) {
			hooksAt[h.Weight] = append(hooksAt[h.Weight], h)
		}
	}
	var order []int
	for w := range byWave {
		order = append(order, w)
	}
	for w := range hooksAt {
		if _, ok := byWave[w]; !ok {
			order = append(order, w)
		}
	}
	sort.Ints(order)
	for i, w := range order {
		wave := byWave[w]
		if len(order) > 1 {
			fmt.Fprintf(o.Out, "  sync wave %d: %s\n", w, countOf(len(wave), "object"))
		}
		if _, err := e.applyChanged(ctx, wave, plan, claims, st); err != nil {
			return err
		}
		if err := e.runHooks(ctx, hooksAt[w], SyncEvent, p, o.Timeout, o.Out); err != nil {
			return err
		}
		if i == len(order)-1 || len(wave) == 0 {
			continue
		}
		ids := object.ObjMetadataSet{}
		for _, obj := range wave {
			ids = append(ids, object.UnstructuredToObjMetadata(obj.Unstructured))
		}
		if _, err := e.Wait(ctx, ids, o); err != nil {
			return fmt.Errorf("sync wave %d did not become ready, so the waves after it were not applied: %w", w, err)
		}
	}
	return nil
}

// InterruptedError is a launch stopped (Ctrl-C) while it waited: everything was applied; NotReady
// are the objects that were not ready yet, with their states.
type InterruptedError struct {
	Applied  int
	NotReady []string
}

func (e *InterruptedError) Error() string {
	msg := fmt.Sprintf("interrupted while waiting: all %d objects were applied", e.Applied)
	if len(e.NotReady) > 0 {
		msg += fmt.Sprintf("; not ready yet: %s", strings.Join(e.NotReady, ", "))
	}
	return msg
}

func (e *InterruptedError) Unwrap() error { return context.Canceled }

func interruptedWait(states []ObjState, p *Project) error {
	ie := &InterruptedError{Applied: len(states)}
	for _, st := range states {
		if !st.Ready() {
			ie.NotReady = append(ie.NotReady, fmt.Sprintf("%s (%s)", st.Ref, st.Status))
		}
	}
	return hint.With(ie, "what was applied stays: see it with "+p.Command("status")+"; remove it with "+p.Command("down"))
}

// takeBack undoes a launch that applied only its Namespaces and CRDs: it deletes what this run
// created, then restores the inventory (or deletes the project namespace it created, inventory
// included). When something cannot be deleted the inventory keeps it, for down.
func (e *Engine) takeBack(ctx context.Context, p *Project, inv *Inventory, created []*unstructured.Unstructured, createdNS bool) {
	ctx = context.WithoutCancel(ctx)
	for _, u := range created {
		if u.GetName() == p.Namespace && object.IsNamespace(u) {
			continue // deleted last, below
		}
		ri, _, err := e.resource(u)
		if err != nil {
			return
		}
		if err := ri.Delete(ctx, u.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return
		}
	}
	switch {
	case createdNS:
		_ = e.client.CoreV1().Namespaces().Delete(ctx, p.Namespace, metav1.DeleteOptions{})
	case !inv.existed:
		_ = e.deleteInventory(ctx, p)
	default:
		_ = e.saveInventory(ctx, p, inv, inv.Objects, nil)
	}
}

// union is a followed by the members of b it lacks.
func union(a, b object.ObjMetadataSet) object.ObjMetadataSet {
	out := append(object.ObjMetadataSet{}, a...)
	for _, id := range b {
		if !out.Contains(id) {
			out = append(out, id)
		}
	}
	return out
}

// markNamespaces keeps, on the project's Namespace objects, the mark saying this project created
// them: set on those it creates now, kept on those it created before (server-side apply would
// drop a field harmony stops sending). down deletes only namespaces that carry it.
func markNamespaces(objs []Object, claims map[object.ObjMetadata]claim, p *Project) {
	for _, obj := range objs {
		if !object.IsNamespace(obj.Unstructured) {
			continue
		}
		c := claims[object.UnstructuredToObjMetadata(obj.Unstructured)]
		if c.live != nil && c.live.GetAnnotations()[CreatedNamespaceAnnotation] != p.InventoryID {
			continue
		}
		ann := obj.GetAnnotations()
		ann[CreatedNamespaceAnnotation] = p.InventoryID
		obj.SetAnnotations(ann)
	}
}

// parallelism bounds the requests launch has in flight at once.
const parallelism = 16

// forEach runs fn for every index with bounded parallelism.
func forEach(n int, fn func(i int)) {
	sem := make(chan struct{}, parallelism)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn(i)
		}()
	}
	wg.Wait()
}

// plan dry-runs every object and says what applying it would do. Objects whose namespace does
// not exist yet (a dry run of the whole launch) are planned as creations without a server check.
func (e *Engine) plan(ctx context.Context, objs []Object, claims map[object.ObjMetadata]claim, dryRunOnly bool, st *states) ([]Step, []string) {
	steps := make([]Step, len(objs))
	problems := make([]string, len(objs))
	nsOK := map[string]bool{}
	for _, obj := range objs {
		if ns := obj.GetNamespace(); ns != "" && dryRunOnly {
			if _, seen := nsOK[ns]; !seen {
				nsOK[ns] = e.namespaceExists(ctx, ns)
			}
		}
	}
	forEach(len(objs), func(i int) {
		obj := objs[i]
		id := object.UnstructuredToObjMetadata(obj.Unstructured)
		step := Step{ID: id, Ref: ref(id), Origin: obj.Origin, apiVersion: obj.GetAPIVersion()}
		defer func() { steps[i] = step }()
		if st != nil && st.fast[id] {
			step.Action = Unchanged // as the last launch left it: no dry run needed
			return
		}
		_, _, err := e.resource(obj.Unstructured)
		if err != nil {
			if dryRunOnly {
				step.Action, step.Note = Create, "its kind is defined by a CRD of this launch: checked when applied"
				return
			}
			problems[i] = fmt.Sprintf("%s (%s): %s", step.Ref, obj.Origin, reason(err))
			return
		}
		if ns := obj.GetNamespace(); ns != "" && dryRunOnly && !nsOK[ns] {
			step.Action, step.Note = Create, "namespace "+ns+" does not exist yet: checked when applied"
			return
		}
		c := claims[id]
		live := c.live
		result, err := e.apply(ctx, obj.Unstructured, true, live != nil)
		if err != nil {
			problems[i] = fmt.Sprintf("%s (%s): %s", step.Ref, obj.Origin, reason(err))
			return
		}
		switch {
		case live == nil:
			step.Action = Create
		case same(live, result):
			step.Action = Unchanged
			st.set(id, obj.Unstructured, live)
		default:
			step.Action = Update
		}
		if c.adopted {
			step.Note = "adopted"
		}
	})
	var rejected []string
	for _, p := range problems {
		if p != "" {
			rejected = append(rejected, p)
		}
	}
	return steps, rejected
}

func reason(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return Sanitize(status.Status().Message)
	}
	return Sanitize(err.Error())
}

func rejectedError(rejected []string) error {
	return hint.With(fmt.Errorf("%w:\n  %s", ErrRejected, strings.Join(rejected, "\n  ")),
		"fix the objects above and launch again: nothing of this launch was applied")
}

// applyChanged applies the objects whose plan step is create or update, in parallel within a
// phase; it returns the objects it created.
func (e *Engine) applyChanged(ctx context.Context, objs []Object, plan []Step, claims map[object.ObjMetadata]claim, st *states) ([]*unstructured.Unstructured, error) {
	action := map[object.ObjMetadata]Action{}
	for _, s := range plan {
		action[s.ID] = s.Action
	}
	errs := make([]error, len(objs))
	created := make([]bool, len(objs))
	forEach(len(objs), func(i int) {
		obj := objs[i]
		id := object.UnstructuredToObjMetadata(obj.Unstructured)
		a := action[id]
		if a != Create && a != Update {
			return
		}
		// Force only over objects the project owns (or adopts): a creation that meets an object
		// someone made in the meantime conflicts instead of taking it.
		result, err := e.apply(ctx, obj.Unstructured, false, claims[id].live != nil)
		if err != nil {
			errs[i] = fmt.Errorf("apply %s (%s): %s", ref(object.UnstructuredToObjMetadata(obj.Unstructured)), obj.Origin, reason(err))
			return
		}
		st.set(id, obj.Unstructured, result)
		created[i] = a == Create
	})
	var applied []*unstructured.Unstructured
	for i, obj := range objs {
		if created[i] {
			applied = append(applied, obj.Unstructured)
		}
	}
	return applied, errors.Join(errs...)
}

// planPrune decides about an object the project no longer has: prune it when it still carries
// this project's mark; leave it alone otherwise (someone else took it over). A namespace is
// deleted only when this project created it and it holds nothing of anyone else.
func (e *Engine) planPrune(ctx context.Context, id object.ObjMetadata, p *Project) Step {
	step := Step{ID: id, Ref: ref(id), Action: Prune}
	ri, err := e.resourceFor(id)
	if err != nil {
		step.Action, step.Note = Skip, "its kind is gone from the cluster"
		return step
	}
	live, err := ri.Get(ctx, id.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		step.Action, step.Note = Skip, "already gone"
		return step
	}
	if err != nil {
		step.Action, step.Note, step.keep = Skip, reason(err), true
		return step
	}
	step.uid = live.GetUID()
	switch {
	case live.GetAnnotations()[OwningInventoryAnnotation] != p.InventoryID:
		step.Action, step.Note = Skip, "no longer marked as this project's: not deleted"
	case object.IsCRD(live) && live.GetAnnotations()[ChartCRDAnnotation] != "":
		step.Action, step.Note, step.keptCRD = Skip, "from the Helm chart's crds/ folder (Helm never deletes those either)", true
	case object.IsCRD(live):
		if others := e.othersOfKind(ctx, live, p); others != "" {
			step.Action, step.Note, step.keptCRD = Skip, others, true
		}
	case object.IsNamespace(live) && !createdBy(live, p):
		step.Action, step.Note, step.release = Skip, "harmony did not create it: not deleted", true
	case object.IsNamespace(live):
		if others := e.foreignObjects(ctx, id.Name, p); len(others) > 0 {
			step.Action, step.Note, step.release = Skip, "it holds objects that are not this project's ("+strings.Join(others, ", ")+"): not deleted", true
		}
	}
	return step
}

// othersOfKind describes the custom resources of a CRD's kind that are not p's, in all
// namespaces ("" when there are none): deleting the CRD would delete them too. When they
// cannot be listed, that is the reason to keep it.
func (e *Engine) othersOfKind(ctx context.Context, crd *unstructured.Unstructured, p *Project) string {
	group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
	plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
	singular, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "singular")
	kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	version := "" // the storage version when it is served, else the first served one
	for _, v := range versions {
		m, _ := v.(map[string]any)
		served, _ := m["served"].(bool)
		storage, _ := m["storage"].(bool)
		if served && (version == "" || storage) {
			version, _ = m["name"].(string)
		}
	}
	if singular == "" {
		singular = strings.ToLower(kind)
	}
	// A kind that is not served (no version served, or its names not accepted) cannot be
	// listed, yet resources of it stored before are still there, and go with the CRD.
	if version == "" || plural == "" {
		return "no version of its kind is served, so its resources cannot be listed: deleting it could delete resources that are not this project's"
	}
	list, err := e.dyn.Resource(schema.GroupVersionResource{Group: group, Version: version, Resource: plural}).List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) {
		return "its " + plural + " are not served, so they cannot be listed: deleting it could delete resources that are not this project's"
	}
	if err != nil {
		return "its " + plural + " cannot be listed (" + reason(err) + "): deleting it could delete resources that are not this project's"
	}
	var others []string
	for _, it := range list.Items {
		if it.GetAnnotations()[OwningInventoryAnnotation] == p.InventoryID {
			continue
		}
		name := singular + "/" + it.GetName()
		if it.GetNamespace() != "" {
			name += " in namespace " + it.GetNamespace()
		}
		others = append(others, name)
	}
	if len(others) == 0 {
		return ""
	}
	slices.Sort(others)
	n := len(others)
	if n > 3 {
		others = append(others[:3], "…")
	}
	if n == 1 {
		return fmt.Sprintf("1 %s in the cluster is not this project's (%s)", singular, others[0])
	}
	return fmt.Sprintf("%d %s in the cluster are not this project's (%s)", n, plural, strings.Join(others, ", "))
}

// prune deletes the objects planned for pruning, namespaces last, each only if it is still the
// object that was checked (same UID); it removes the project's mark from namespaces it keeps.
func (e *Engine) prune(ctx context.Context, plan []Step) error {
	for _, namespaces := range []bool{false, true} {
		for _, s := range plan {
			if (s.ID.GroupKind == nsKind) != namespaces {
				continue
			}
			ri, err := e.resourceFor(s.ID)
			if err != nil {
				continue
			}
			switch {
			case s.Action == Prune:
				policy := metav1.DeletePropagationBackground
				opts := metav1.DeleteOptions{PropagationPolicy: &policy, Preconditions: &metav1.Preconditions{UID: &s.uid}}
				if err := ri.Delete(ctx, s.ID.Name, opts); err != nil && !apierrors.IsNotFound(err) {
					return fmt.Errorf("prune %s: %w", s.Ref, err)
				}
			case s.release:
				patch := []byte(`{"metadata":{"annotations":{"` + OwningInventoryAnnotation + `":null}}}`)
				if _, err := ri.Patch(ctx, s.ID.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager}); err != nil && !apierrors.IsNotFound(err) {
					return fmt.Errorf("release %s: %w", s.Ref, err)
				}
			}
		}
	}
	return nil
}

var nsKind = schema.GroupKind{Kind: "Namespace"}
