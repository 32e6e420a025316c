package launch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/cli-utils/pkg/object"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// Options of one launch.
type Options struct {
	// Namespace for objects that name none; created when missing.
	Namespace string
	// Project names the inventory; the same project launched again updates and prunes it.
	Project string
	// DryRun plans (create/update/unchanged/prune) without changing anything.
	DryRun bool
	// NoWait returns right after applying.
	NoWait bool
	// Timeout bounds the readiness wait.
	Timeout time.Duration
	// Out receives progress lines.
	Out io.Writer
	// Live redraws progress in place (a terminal).
	Live bool
}

// Report is what a launch did.
type Report struct {
	Namespace string     `json:"namespace"`
	Plan      []Step     `json:"plan"`
	Status    []ObjState `json:"status,omitempty"`
	Endpoints []Endpoint `json:"endpoints,omitempty"`
	Ready     bool       `json:"ready"`
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
func (e *Engine) Launch(ctx context.Context, objs []Object, o Options) (*Report, error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	objs, err := e.prepare(objs, o.Namespace, o.Project)
	if err != nil {
		return nil, err
	}
	rep := &Report{Namespace: o.Namespace}
	inv, err := e.loadInventory(ctx, o.Namespace, o.Project)
	if err != nil {
		return nil, err
	}

	// The project namespace must exist for the server to check the objects that go there.
	createdNS := false
	if !o.DryRun {
		if createdNS, err = e.ensureNamespace(ctx, o.Namespace); err != nil {
			return nil, err
		}
	}
	undo := func() {
		if createdNS {
			_ = e.client.CoreV1().Namespaces().Delete(context.WithoutCancel(ctx), o.Namespace, metav1.DeleteOptions{})
		}
	}

	// Namespaces and CRDs first: dry-run them, then everything whose kind and namespace exist.
	var early, late []Object
	for _, obj := range objs {
		if phase(obj.Unstructured) < 2 {
			early = append(early, obj)
		} else {
			late = append(late, obj)
		}
	}
	planEarly, rejected := e.plan(ctx, early, o.DryRun)
	if len(rejected) > 0 {
		undo()
		return nil, rejectedError(rejected)
	}
	rep.Plan = append(rep.Plan, planEarly...)
	var appliedEarly []*unstructured.Unstructured
	if !o.DryRun && len(early) > 0 {
		if appliedEarly, err = e.applyChanged(ctx, early, planEarly); err != nil {
			undo()
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
	planLate, rejected := e.plan(ctx, late, o.DryRun)
	if len(rejected) > 0 {
		// Nothing of the project is applied: take back what this run created.
		for _, u := range appliedEarly {
			if ri, _, err := e.resource(u); err == nil {
				_ = ri.Delete(context.WithoutCancel(ctx), u.GetName(), metav1.DeleteOptions{})
			}
		}
		undo()
		return nil, rejectedError(rejected)
	}
	rep.Plan = append(rep.Plan, planLate...)

	current := object.ObjMetadataSet{}
	for _, obj := range objs {
		current = append(current, object.UnstructuredToObjMetadata(obj.Unstructured))
	}
	for _, id := range inv.Objects {
		if !current.Contains(id) {
			rep.Plan = append(rep.Plan, e.planPrune(ctx, id, o.Project))
		}
	}
	if o.DryRun {
		return rep, nil
	}
	if _, err := e.applyChanged(ctx, late, planLate); err != nil {
		return nil, err
	}
	if err := e.prune(ctx, rep.Plan); err != nil {
		return nil, err
	}
	if err := e.saveInventory(ctx, o.Namespace, inv, current); err != nil {
		return nil, err
	}
	if o.NoWait {
		return rep, nil
	}
	states, err := e.Wait(ctx, current, o)
	rep.Status = states
	rep.Ready = err == nil
	rep.Endpoints = e.Endpoints(ctx, current)
	return rep, err
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
func (e *Engine) plan(ctx context.Context, objs []Object, dryRunOnly bool) ([]Step, []string) {
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
		step := Step{ID: id, Ref: ref(id), Origin: obj.Origin}
		defer func() { steps[i] = step }()
		ri, _, err := e.resource(obj.Unstructured)
		if err != nil {
			if dryRunOnly {
				step.Action, step.Note = Create, "its kind is defined by a CRD of this launch: checked when applied"
				return
			}
			problems[i] = fmt.Sprintf("%s (%s): %v", step.Ref, obj.Origin, err)
			return
		}
		if ns := obj.GetNamespace(); ns != "" && dryRunOnly && !nsOK[ns] {
			step.Action, step.Note = Create, "namespace "+ns+" does not exist yet: checked when applied"
			return
		}
		live, err := ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			problems[i] = fmt.Sprintf("%s (%s): %v", step.Ref, obj.Origin, err)
			return
		}
		result, err := e.apply(ctx, obj.Unstructured, true)
		if err != nil {
			problems[i] = fmt.Sprintf("%s (%s): %s", step.Ref, obj.Origin, reason(err))
			return
		}
		switch {
		case live == nil:
			step.Action = Create
		case same(live, result):
			step.Action = Unchanged
		default:
			step.Action = Update
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
		return status.Status().Message
	}
	return err.Error()
}

func rejectedError(rejected []string) error {
	return hint.With(fmt.Errorf("%w:\n  %s", ErrRejected, strings.Join(rejected, "\n  ")),
		"fix the objects above and launch again: nothing of this launch was applied")
}

// applyChanged applies the objects whose plan step is create or update, in parallel within a
// phase; it returns the objects it created.
func (e *Engine) applyChanged(ctx context.Context, objs []Object, plan []Step) ([]*unstructured.Unstructured, error) {
	action := map[object.ObjMetadata]Action{}
	for _, s := range plan {
		action[s.ID] = s.Action
	}
	errs := make([]error, len(objs))
	created := make([]bool, len(objs))
	forEach(len(objs), func(i int) {
		obj := objs[i]
		a := action[object.UnstructuredToObjMetadata(obj.Unstructured)]
		if a != Create && a != Update {
			return
		}
		if _, err := e.apply(ctx, obj.Unstructured, false); err != nil {
			errs[i] = fmt.Errorf("apply %s (%s): %s", ref(object.UnstructuredToObjMetadata(obj.Unstructured)), obj.Origin, reason(err))
			return
		}
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
// this project's mark; leave it alone otherwise (someone else took it over).
func (e *Engine) planPrune(ctx context.Context, id object.ObjMetadata, project string) Step {
	step := Step{ID: id, Ref: ref(id), Action: Prune}
	ri, err := e.resourceFor(id)
	if err != nil {
		step.Action, step.Note = Skip, "its kind is gone from the cluster"
		return step
	}
	live, err := ri.Get(ctx, id.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		step.Action, step.Note = Skip, "already gone"
	case err != nil:
		step.Action, step.Note = Skip, err.Error()
	case live.GetAnnotations()[OwningInventoryAnnotation] != project:
		step.Action, step.Note = Skip, "no longer marked as harmony's: not deleted"
	}
	return step
}

func (e *Engine) prune(ctx context.Context, plan []Step) error {
	for _, s := range plan {
		if s.Action != Prune {
			continue
		}
		ri, err := e.resourceFor(s.ID)
		if err != nil {
			return err
		}
		policy := metav1.DeletePropagationBackground
		if err := ri.Delete(ctx, s.ID.Name, metav1.DeleteOptions{PropagationPolicy: &policy}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("prune %s: %w", s.Ref, err)
		}
	}
	return nil
}
