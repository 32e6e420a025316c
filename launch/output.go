package launch

import (
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/cli-utils/pkg/object"
)

// OutputSchemaVersion is the version of the document launch, down and status print with
// -o json. A field is only ever added within a version; a change to one is a new version.
const OutputSchemaVersion = 1

// Output is the -o json document of launch, down and status: one shape for the three, so a
// script reads them with one type.
type Output struct {
	SchemaVersion int `json:"schemaVersion"`
	// Command is "launch", "down" or "status".
	Command string    `json:"command"`
	App     OutputApp `json:"app"`
	// DryRun is a launch that changed nothing.
	DryRun bool `json:"dryRun"`
	// Ready is whether every object is ready (launch waited, status); false for down.
	Ready   bool           `json:"ready"`
	Objects []OutputObject `json:"objects"`

	// What a launch adds.
	Endpoints  []Endpoint   `json:"endpoints,omitempty"`
	Chart      *ChartInfo   `json:"chart,omitempty"`
	Images     []ImageState `json:"images,omitempty"`
	Privileges []Privilege  `json:"privileges,omitempty"`
	Conflicts  []Conflict   `json:"conflicts,omitempty"`
}

// OutputApp names the app: its repository, its path in it, and its namespace.
type OutputApp struct {
	Repository string `json:"repository"`
	Path       string `json:"path"`
	Namespace  string `json:"namespace"`
}

// OutputObject is one object. Action is one of created, configured, unchanged, pruned,
// left-alone, hook-run (what launch or down did, or would do in a dry run; "" for status).
type OutputObject struct {
	Kind       string `json:"kind"`
	APIVersion string `json:"apiVersion"`
	Name       string `json:"name"`
	Namespace  string `json:"namespace"`
	Action     string `json:"action"`
	Ready      bool   `json:"ready"`
	Reason     string `json:"reason"`
	// Origin is where launch found it (file:line, or the kustomization).
	Origin string `json:"origin,omitempty"`
}

// The stable action words of Output.
var outputActions = map[Action]string{
	Create: "created", Update: "configured", Unchanged: "unchanged", Prune: "pruned", Skip: "left-alone", RunHook: "hook-run",
}

func newOutput(command string, p *Project) Output {
	o := Output{SchemaVersion: OutputSchemaVersion, Command: command, Objects: []OutputObject{}}
	if p != nil {
		o.App = OutputApp{Repository: p.Root, Path: p.AppPath, Namespace: p.Namespace}
	}
	return o
}

// version is the API version of gk: the one the object was planned with, else the cluster's
// preferred one (e nil: none known, the group alone).
func (e *Engine) version(gk schema.GroupKind, planned string) string {
	if planned != "" {
		return planned
	}
	if e != nil {
		if m, err := e.mapper.RESTMapping(gk); err == nil {
			return m.GroupVersionKind.GroupVersion().String()
		}
	}
	if gk.Group == "" {
		return "v1"
	}
	return "" // its kind is no longer served (a CRD deleted): no version is known
}

func outputObject(id object.ObjMetadata, version string) OutputObject {
	return OutputObject{Kind: id.GroupKind.Kind, APIVersion: version, Name: id.Name, Namespace: id.Namespace}
}

// LaunchOutput is launch's -o json document for rep (e nil: no cluster was reached).
func (e *Engine) LaunchOutput(p *Project, rep *Report, dryRun bool) Output {
	o := newOutput("launch", p)
	o.DryRun, o.Ready = dryRun, rep.Ready && !dryRun
	if rep.Namespace != "" {
		o.App.Namespace = rep.Namespace
	}
	states := map[object.ObjMetadata]ObjState{}
	for _, s := range rep.Status {
		states[s.ID] = s
	}
	for _, s := range rep.Plan {
		obj := outputObject(s.ID, e.version(s.ID.GroupKind, s.apiVersion))
		obj.Action, obj.Reason, obj.Origin = outputActions[s.Action], s.Note, s.Origin
		if st, ok := states[s.ID]; ok {
			obj.Ready = st.Ready()
			if !obj.Ready {
				obj.Reason = stateReason(st)
			}
		}
		o.Objects = append(o.Objects, obj)
	}
	o.Endpoints, o.Chart, o.Images, o.Privileges, o.Conflicts = rep.Endpoints, rep.Chart, rep.Images, rep.Privileges, rep.Conflicts
	return o
}

// DownOutput is down's -o json document for its steps.
func (e *Engine) DownOutput(p *Project, steps []Step) Output {
	o := newOutput("down", p)
	for _, s := range steps {
		obj := outputObject(s.ID, e.version(s.ID.GroupKind, s.apiVersion))
		obj.Action, obj.Reason = outputActions[s.Action], s.Note
		o.Objects = append(o.Objects, obj)
	}
	return o
}

// StatusOutput is status's -o json document for states.
func (e *Engine) StatusOutput(p *Project, states []ObjState) Output {
	o := newOutput("status", p)
	o.Ready = true
	for _, s := range states {
		obj := outputObject(s.ID, e.version(s.ID.GroupKind, ""))
		obj.Ready = s.Ready()
		if !obj.Ready {
			obj.Reason = stateReason(s)
			o.Ready = false
		}
		o.Objects = append(o.Objects, obj)
	}
	return o
}

// EmptyOutput is the document of a command that found nothing (down with no runtime).
func EmptyOutput(command string, p *Project) Output { return newOutput(command, p) }

// stateReason is why an object is not ready, on one line.
func stateReason(s ObjState) string {
	parts := []string{s.Status}
	if s.Message != "" {
		parts = append(parts, s.Message)
	}
	parts = append(parts, s.Reasons...)
	return strings.Join(parts, ": ")
}
