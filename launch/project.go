package launch

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// Selection is what the user named: a folder inside the project and the flags that choose
// within it. Resolve turns it into a Project.
type Selection struct {
	// Dir is the folder launch was pointed at ("" is the current directory).
	Dir string
	// Manifests are the -f paths: relative to Dir, else to the project root.
	Manifests []string
	// Namespace overrides the project's namespace (-n).
	Namespace string
	// Command is the harmony command resolving it ("launch", "status", "down"): its hints name
	// it. Empty means launch.
	Command string
	// Profile activates a skaffold.yaml profile (--profile).
	Profile string
	// Cluster are the flags that chose the cluster as typed (--kubeconfig PATH, --context
	// NAME): hints naming a command for the project repeat them.
	Cluster []string
}

// Project is one repository launched as a unit. Whichever folder inside it harmony is pointed
// at, it resolves to the same root, namespace and inventory id, so launching again updates the
// same objects and down removes them.
type Project struct {
	// Root is the repository: the git top-level holding the folder given, else the nearest
	// folder above it holding harmony.yaml, else the folder given. Nothing outside it is read.
	Root string
	// App is the app launched: the folder given when it holds something deployable
	// (harmony.yaml, skaffold.yaml, a chart, a kustomization, manifests), else the nearest
	// such folder above it, else Root. An app is a repository plus a path (as in Argo CD): two
	// apps of one repository launch side by side, each with its own namespace and inventory.
	App string
	// AppPath is App relative to Root, slash separated ("." for the repository's own app).
	AppPath string
	// Name is the root folder's name, and the app's path after it for an app in a subfolder
	// (shop-frontend): the default namespace and the chart's release name.
	Name string
	// Namespace receives the objects that name none: -n, else harmony.yaml's, else the name.
	Namespace string
	// InventoryID marks every object the project applied (config.k8s.io/owning-inventory) and
	// labels its inventory. It depends on the root's location and the namespace, so two
	// repositories sharing a namespace, or one repository launched into two namespaces, never
	// take each other's objects.
	InventoryID string
	// Config is the root's harmony.yaml, nil when there is none.
	Config *Config
	// Manifests are the absolute paths chosen with -f; empty means discover.
	Manifests []string
	// Profile is the skaffold.yaml profile to activate ("" for none).
	Profile string

	dir     string   // the folder given, absolute
	dirArg  string   // the folder as typed ("" when none was)
	nsFlag  string   // -n as typed ("" when none was)
	cluster []string // --kubeconfig/--context as typed
}

// Resolve finds the project sel points into. It reads the root's harmony.yaml, and nothing else.
func Resolve(sel Selection) (*Project, error) {
	dirArg := sel.Dir
	if sel.Dir == "" {
		sel.Dir = "."
	}
	dir, err := filepath.Abs(sel.Dir)
	if err != nil {
		return nil, err
	}
	cmd := "harmony " + sel.Command
	if sel.Command == "" {
		cmd = "harmony launch"
	}
	if st, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, hint.With(fmt.Errorf("%q does not exist: %w", sel.Dir, fs.ErrNotExist),
			"name a folder of the project, or run it from inside the project: "+cmd+" [DIR]")
	} else if err != nil || !st.IsDir() {
		return nil, hint.With(fmt.Errorf("%q is not a directory", sel.Dir),
			"name a folder of the project, or run it from inside the project: "+cmd+" [DIR]")
	}
	p := &Project{Root: findRoot(dir), dir: dir, dirArg: dirArg, Profile: sel.Profile, nsFlag: sel.Namespace, cluster: sel.Cluster}
	p.App = findApp(dir, p.Root)
	p.AppPath = "."
	p.Name = filepath.Base(p.Root)
	if p.App != p.Root {
		rel, _ := filepath.Rel(p.Root, p.App)
		p.AppPath = filepath.ToSlash(rel)
		p.Name = appName(p.Root, p.AppPath)
	}
	if p.Config, err = loadConfig(p.App); err != nil {
		return nil, err
	}
	if p.Config == nil && len(sel.Manifests) == 0 && broadFolder(p.App) {
		// Looking for manifests there would read a whole home or file system, silently.
		return nil, hint.With(fmt.Errorf("%s is not a project: it is your home folder, or holds it, or is a file system's root, and harmony does not search all of it for manifests", p.App),
			"cd into a repository's folder and run "+cmd+" there, or name one: "+cmd+" PATH")
	}
	switch {
	case sel.Namespace != "":
		p.Namespace = sel.Namespace
	case p.Config != nil && p.Config.Namespace != "":
		p.Namespace = p.Config.Namespace
	default:
		p.Namespace = Namespace(p.Name)
	}
	if errs := validation.IsDNS1123Label(p.Namespace); len(errs) > 0 {
		return nil, hint.With(fmt.Errorf("namespace %q: %s", p.Namespace, strings.Join(errs, "; ")),
			"name a namespace of lowercase letters, digits and '-': "+cmd+" -n NAME")
	}
	p.InventoryID = inventoryID(p.Name, p.App, p.Namespace)
	for _, f := range sel.Manifests {
		path, err := p.manifestPath(f)
		if err != nil {
			return nil, err
		}
		p.Manifests = append(p.Manifests, path)
	}
	return p, nil
}

// manifestPath resolves one -f path: relative to the folder given (like kubectl), else to the
// project root, so `-f k8s/overlays/dev` works from anywhere in the project. It must stay
// inside the project.
func (p *Project) manifestPath(f string) (string, error) {
	path := f
	if !filepath.IsAbs(path) {
		path = filepath.Join(p.dir, f)
		if _, err := os.Lstat(path); err != nil {
			if _, rerr := os.Lstat(filepath.Join(p.Root, f)); rerr == nil {
				path = filepath.Join(p.Root, f)
			}
		}
	}
	path = filepath.Clean(path)
	if !within(p.Root, path) {
		return "", hint.With(fmt.Errorf("-f %q is outside the project %q", f, p.Root),
			"name manifests inside the project, or launch the other folder: harmony launch DIR")
	}
	return path, nil
}

// Discover finds what to launch: the -f choice, else the project's harmony.yaml, else what
// discovery finds at the root. When the choice is ambiguous the hint prints the -f form.
func (p *Project) Discover() (*Source, error) {
	// The app's folder is where discovery looks (and whose harmony.yaml and skaffold.yaml
	// count); -f paths outside it are found from the repository. Rendering reads within the
	// repository either way, so an overlay's ../../base in a sibling folder builds.
	base := p.App
	for _, m := range p.Manifests {
		if !within(p.App, m) {
			base = p.Root
		}
	}
	src, err := discover(base, p.Manifests, p.Profile)
	var amb *AmbiguousError
	if errors.As(err, &amb) && len(p.Manifests) == 0 && p.dir != amb.Root {
		// The folder the launch runs in (or names) is one of the choices, or inside one (cd
		// overlays/prod && harmony launch): that one is meant.
		for _, c := range amb.Candidates {
			if cand := filepath.Join(amb.Root, c); within(cand, p.dir) {
				if src, err = discover(base, []string{cand}, p.Profile); src != nil {
					rel, _ := filepath.Rel(p.Root, cand)
					src.Reason = filepath.ToSlash(rel) + ", the folder it was run from"
				}
				break
			}
		}
	}
	if src != nil && base != p.Root {
		rel, _ := filepath.Rel(p.Root, base)
		src.Root = p.Root
		for i := range src.Images {
			src.Images[i].Context = path.Join(filepath.ToSlash(rel), src.Images[i].Context)
		}
	}
	if errors.As(err, &amb) {
		hints := []string{"harmony applies nothing when the choice is not clear; pick one:"}
		for _, c := range amb.Candidates {
			hints = append(hints, "  "+p.selectCommand(filepath.Join(amb.Root, c)))
		}
		if amb.What != "several apps" {
			hints = append(hints, "or write the choice into "+ProjectFile+" ("+choiceKeys(amb.What)+")")
		}
		return nil, hint.With(err, hints...)
	}
	var variants *variantsError
	if errors.As(err, &variants) {
		hints := []string{"nothing was applied: the images those configs build would not be built; copy (or link) the one to launch to " + SkaffoldFile + ", then launch again:"}
		for i, f := range variants.Files {
			if i == maxVariantHints {
				hints = append(hints, fmt.Sprintf("  (and %d more)", len(variants.Files)-i))
				break
			}
			hints = append(hints, "  "+hint.Command("cp", fromHere(filepath.Join(variants.Dir, f)), fromHere(filepath.Join(variants.Dir, SkaffoldFile))))
		}
		hints = append(hints, "  "+p.Command("launch"),
			"or name the manifests, with the images to build in "+ProjectFile+" (images: [{image: NAME, context: DIR}]): "+p.command("launch", false, "-f", "PATH"))
		return nil, hint.With(err, hints...)
	}
	if errors.Is(err, ErrNothingFound) && len(p.Manifests) == 0 {
		return nil, hint.After(err, "or name them: "+p.command("launch", false, "-f", "FILE"))
	}
	if src != nil {
		src.project = p
	}
	return src, err
}

// maxVariantHints is how many of a folder's Skaffold configs under other names a hint offers
// to copy to skaffold.yaml.
const maxVariantHints = 5

// selectCommand is the command that launches path. When path is in an app folder of its own
// (a monorepo's app), that is the app launched, with its own namespace and inventory: launching
// a second app then never prunes the first. Else it is this project with path as its manifests.
func (p *Project) selectCommand(path string) string {
	if app := findApp(path, p.Root); app != p.Root && len(p.Manifests) == 0 && p.nsFlag == "" {
		args := []string{"harmony", "launch", fromHere(app)}
		if app != path {
			rel, err := filepath.Rel(app, path)
			if err == nil {
				args = append(args, "-f", filepath.ToSlash(rel))
			}
		}
		if p.Profile != "" {
			args = append(args, "--profile", p.Profile)
		}
		return hint.Command(append(args, p.cluster...)...)
	}
	rel, err := filepath.Rel(p.dir, path)
	if err != nil {
		rel = path
	}
	return p.command("launch", false, "-f", filepath.ToSlash(rel))
}

// fromHere is dir as the user would type it from the current folder.
func fromHere(dir string) string {
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, dir); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return filepath.ToSlash(rel)
		}
	}
	return dir
}

// Command is the harmony command name (launch, status, down) for this project as the user
// addressed it, for a hint that must work when pasted where they typed theirs: the folder
// given (unless it is the current one), launch's -f and --profile, then flags, then -n and
// --kubeconfig/--context as typed (-n unless flags name one).
func (p *Project) Command(name string, flags ...string) string {
	return p.commandOn(p.cluster, name, true, flags...)
}

// CommandOn is Command on another cluster: cluster replaces the --kubeconfig/--context typed
// (nil: harmony's own runtime).
func (p *Project) CommandOn(cluster []string, name string, flags ...string) string {
	return p.commandOn(cluster, name, true, flags...)
}

// runtimeContext is the kubeconfig context of harmony's runtime (bootstrap.ContextName), the
// cluster a project goes to without --kubeconfig/--context.
const runtimeContext = "harmony"

// kubectl is a kubectl command line on the project's cluster, for a hint.
func (p *Project) kubectl(args ...string) string {
	cluster := p.cluster
	if len(cluster) == 0 {
		cluster = []string{"--context", runtimeContext}
	}
	return hint.Command(append(append([]string{"kubectl"}, cluster...), args...)...)
}

func (p *Project) command(name string, manifests bool, flags ...string) string {
	return p.commandOn(p.cluster, name, manifests, flags...)
}

func (p *Project) commandOn(cluster []string, name string, manifests bool, flags ...string) string {
	args := []string{"harmony", name}
	if p.dirArg != "" {
		if wd, err := os.Getwd(); err != nil || filepath.Clean(wd) != p.dir {
			args = append(args, p.dirArg)
		}
	}
	if name == "launch" && manifests {
		for _, m := range p.Manifests {
			rel, err := filepath.Rel(p.dir, m)
			if err != nil {
				rel = m
			}
			args = append(args, "-f", filepath.ToSlash(rel))
		}
		if p.Profile != "" {
			args = append(args, "--profile", p.Profile)
		}
	}
	args = append(args, flags...)
	if p.nsFlag != "" && !slices.Contains(flags, "-n") {
		args = append(args, "-n", p.nsFlag)
	}
	args = append(args, cluster...)
	return hint.Command(args...)
}

// Timeout is the readiness timeout: harmony.yaml's when set, else def.
func (p *Project) Timeout(def time.Duration) time.Duration {
	if p.Config != nil && p.Config.Timeout != "" {
		if d, err := time.ParseDuration(p.Config.Timeout); err == nil {
			return d
		}
	}
	return def
}

// findRoot walks up from dir to the git top-level, else to the nearest folder holding
// harmony.yaml; else dir is the root. Like git's safe.directory, a marker owned by another
// user (a .git planted in /tmp) is ignored.
// broadFolder reports whether dir is a file system's root, the user's home folder or a folder
// holding it (/home, /Users).
func broadFolder(dir string) bool {
	if filepath.Dir(dir) == dir {
		return true
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return false
	}
	if h, err := filepath.EvalSymlinks(home); err == nil {
		home = h
	}
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		dir = d
	}
	return home == dir || strings.HasPrefix(home, dir+string(filepath.Separator))
}

func findRoot(dir string) string {
	for _, marker := range []string{".git", ProjectFile} {
		for d := dir; ; d = filepath.Dir(d) {
			if st, err := os.Lstat(filepath.Join(d, marker)); err == nil && trusted(d, st) {
				return d
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return dir
}

// appName is the name of the app at appPath (slash separated) in the repository root. A name
// too long for a namespace keeps its start and ends in a hash of the path, so two long paths
// never share one.
func appName(root, appPath string) string {
	if appPath == "." {
		return filepath.Base(root)
	}
	name := filepath.Base(root) + "-" + strings.ReplaceAll(appPath, "/", "-")
	if len(Namespace(name)) < 63 {
		return name
	}
	sum := sha256.Sum256([]byte(appPath))
	return strings.Trim(Namespace(name)[:54], "-") + "-" + hex.EncodeToString(sum[:])[:8]
}

// findApp is the app dir belongs to inside root: dir when it holds something deployable, else
// the nearest folder above it that does, else root. The usual manifests folders (k8s/,
// deploy/, manifests/, charts/, …) and what is inside them hold the manifests of the app above
// them, and so does what is inside a chart (templates/): they are never apps of their own, so
// `cd k8s/postgres && harmony launch` launches the repository's whole app, as from its root.
func findApp(dir, root string) string {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return root
	}
	for d := dir; d != root && within(root, d); d = filepath.Dir(d) {
		if inUsualFolder(root, d) || insideChart(root, d) {
			continue
		}
		// A folder that is (or leads through) a link out of the repository is never an app:
		// nothing outside the repository is read.
		if real, err := filepath.EvalSymlinks(d); err != nil || !within(realRoot, real) {
			continue
		}
		if deployable(d) {
			return d
		}
	}
	return root
}

// insideChart reports whether a folder above dir, up to root, is a Helm chart.
func insideChart(root, dir string) bool {
	for d := filepath.Dir(dir); within(root, d); d = filepath.Dir(d) {
		if st, err := os.Stat(filepath.Join(d, ChartFile)); err == nil && st.Mode().IsRegular() {
			return true
		}
		if d == root {
			break
		}
	}
	return false
}

// appPartFolders are more folders that hold a way to deploy the app above them, never an app of
// their own (kubebuilder's config/, a kustomize/ folder, environments).
var appPartFolders = []string{"kustomize", "config", "base", "overlays", "environments", "envs", "helmfile"}

// inUsualFolder reports whether dir is one of the usual manifests or chart folders of a folder
// above it (or appPartFolders), or inside one.
func inUsualFolder(root, dir string) bool {
	rel, err := filepath.Rel(root, dir)
	if err != nil || rel == "." {
		return false
	}
	rel = filepath.ToSlash(rel)
	for p := rel; p != "." && p != "/" && p != ""; p = path.Dir(p) {
		for _, f := range slices.Concat(usualFolders, chartFolders, appPartFolders) {
			if p == f || strings.HasSuffix(p, "/"+f) {
				return true
			}
		}
	}
	return false
}

// deployable reports whether dir holds something harmony can launch on its own: harmony.yaml,
// skaffold.yaml, a chart, a kustomization, a usual folder of manifests, or manifests.
func deployable(dir string) bool {
	t, err := openTree(dir, DefaultMaxFileSize, 64<<20)
	if err != nil {
		return false
	}
	defer t.Close()
	return t.holdsApp(".")
}

// within reports whether path is root or inside it (lexically).
func within(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// inventoryID is a label value (at most 63 characters) naming the project: readable, and unique
// to its root's location and namespace.
func inventoryID(name, root, namespace string) string {
	canon := root
	if r, err := filepath.EvalSymlinks(root); err == nil {
		canon = r
	}
	canon = filepath.ToSlash(canon)
	if runtime.GOOS == "windows" || runtime.GOOS == "darwin" {
		canon = strings.ToLower(canon) // case-insensitive file systems
	}
	sum := sha256.Sum256([]byte(canon + "\n" + namespace))
	label := Namespace(name)
	if len(label) > 40 {
		label = strings.Trim(label[:40], "-")
	}
	return label + "-" + hex.EncodeToString(sum[:])[:12]
}

// choiceKeys names the harmony.yaml keys that record a choice between the candidates of what.
func choiceKeys(what string) string {
	switch {
	case strings.Contains(what, "Helm chart") && strings.Contains(what, "other"):
		return "chart: PATH for a chart, manifests: [...] for the others"
	case strings.Contains(what, "Helm chart"):
		return "chart: PATH"
	}
	return "manifests: [...]"
}
