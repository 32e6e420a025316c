package launch

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"helm.sh/helm/v4/pkg/chart/loader/archive"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/downloader"
	"helm.sh/helm/v4/pkg/getter"
	"helm.sh/helm/v4/pkg/registry"
	repo "helm.sh/helm/v4/pkg/repo/v1"
	"sigs.k8s.io/yaml"

	"github.com/NationTech/harmony-agent/installer"
	"github.com/NationTech/harmony-agent/internal/hint"
)

// remoteTimeout bounds each request that fetches a chart dependency.
const remoteTimeout = 60 * time.Second

// fetchDependencies gets a chart's dependencies that are not vendored, with Helm's own
// downloader (HTTP and OCI repositories): exactly the versions Chart.lock pins, after checking
// Chart.lock's digest against Chart.yaml. The chart is copied to a temporary folder first, so
// the repository is never written to; repository indexes and charts are cached in cacheDir.
func fetchDependencies(files []*archive.BufferedFile, ch *chart.Chart, chartRel, cacheDir string, out io.Writer) (*chart.Chart, error) {
	if ch.Lock == nil {
		return nil, hint.With(fmt.Errorf("chart %s: its dependencies are not vendored and it has no Chart.lock: %w", chartRel, ErrChartDependencies),
			"harmony fetches only the versions a Chart.lock pins: run helm dependency update in "+chartRel+" and commit Chart.lock",
			"or vendor them into "+chartRel+"/charts/")
	}
	tmp, err := os.MkdirTemp("", "harmony-chart-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "chart")
	for _, f := range files {
		name := filepath.FromSlash(f.Name)
		if !filepath.IsLocal(name) {
			return nil, fmt.Errorf("chart %s: file %q is outside the chart", chartRel, f.Name)
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, f.Data, 0o600); err != nil {
			return nil, err
		}
	}
	// Chart.lock is checked against Chart.yaml as Helm checks it; then the copy Helm's downloader
	// sees names only the remote dependencies (the file:// ones are the project's own folders,
	// loaded already through its confined tree: Helm would read them from any path).
	if sum, err := hashReq(ch.Metadata.Dependencies, ch.Lock.Dependencies); err != nil || sum != ch.Lock.Digest {
		return nil, hint.With(fmt.Errorf("chart %s: Chart.lock is out of sync with the dependencies of Chart.yaml: %w", chartRel, ErrChartDependencies),
			"run helm dependency update in "+chartRel+" and commit Chart.lock")
	}
	if err := remoteOnly(dir, ch); err != nil {
		return nil, fmt.Errorf("chart %s: %w", chartRel, err)
	}
	// The repositories Chart.lock names, known to the downloader only for this run, each named
	// by a hash of its URL: the cached index of one repository is never read for another
	// (a name per position let one project's repository plant the index another resolved from).
	repos := repo.NewFile()
	seen := map[string]bool{}
	for _, d := range ch.Lock.Dependencies {
		u := strings.TrimSuffix(d.Repository, "/")
		if u == "" || seen[u] || registry.IsOCI(u) || strings.HasPrefix(u, "file://") {
			continue
		}
		if !strings.HasPrefix(u, "https://") {
			return nil, hint.With(fmt.Errorf("chart %s: dependency %s: repository %q: %w", chartRel, d.Name, d.Repository, ErrInsecureRepository),
				"harmony fetches charts only over https:// (or oci://): vendor it into "+chartRel+"/charts/")
		}
		seen[u] = true
		sum := sha256.Sum256([]byte(u))
		repos.Add(&repo.Entry{Name: "harmony-" + hex.EncodeToString(sum[:8]), URL: u})
	}
	reposFile := filepath.Join(tmp, "repositories.yaml")
	if err := repos.WriteFile(reposFile, 0o600); err != nil {
		return nil, err
	}
	if cacheDir == "" {
		// Never a shared folder another user could have planted: this run's own.
		cacheDir = filepath.Join(tmp, "cache")
	}
	// No credentials of the user's are read: an empty credentials file of this run's own.
	creds := filepath.Join(tmp, "registry.json")
	if err := os.WriteFile(creds, []byte("{}"), 0o600); err != nil {
		return nil, err
	}
	// Every response (index, chart, OCI blob) is capped: a repository cannot fill memory or disk;
	// and every request is https (a redirect to http:// is refused).
	transport := httpsOnly(installer.CappedTransport(DefaultMaxRemoteSize))
	rc, err := registry.NewClient(registry.ClientOptWriter(io.Discard), registry.ClientOptCredentialsFile(creds),
		registry.ClientOptHTTPClient(&http.Client{Transport: transport, Timeout: remoteTimeout}))
	if err != nil {
		return nil, err
	}
	timeout := func(newGetter getter.Constructor) getter.Constructor {
		return func(opts ...getter.Option) (getter.Getter, error) {
			return newGetter(append([]getter.Option{getter.WithTimeout(remoteTimeout), getter.WithRegistryClient(rc), getter.WithTransport(transport)}, opts...)...)
		}
	}
	if out == nil {
		out = io.Discard
	}
	getters := getter.Providers{{Schemes: []string{"https"}, New: timeout(getter.NewHTTPGetter)}, {Schemes: []string{registry.OCIScheme}, New: timeout(getter.NewOCIGetter)}}
	// Each repository's index is fetched now, and a failure is the launch's: Helm's own update
	// only prints it and goes on with whatever index the cache holds.
	indexes := map[string]*repo.IndexFile{}
	for _, e := range repos.Repositories {
		cr, err := repo.NewChartRepository(e, getters)
		if err != nil {
			return nil, fmt.Errorf("chart %s: repository %s: %w", chartRel, e.URL, err)
		}
		cr.CachePath = filepath.Join(cacheDir, "repository")
		path, err := cr.DownloadIndexFile()
		if err != nil {
			return nil, hint.With(fmt.Errorf("chart %s: repository %s: its index: %w", chartRel, e.URL, err),
				"check the repositories Chart.lock names, or vendor the dependencies into "+chartRel+"/charts/")
		}
		if indexes[e.URL], err = repo.LoadIndexFile(path); err != nil {
			return nil, fmt.Errorf("chart %s: repository %s: its index: %w", chartRel, e.URL, err)
		}
	}
	m := &downloader.Manager{
		Out:              out,
		ChartPath:        dir,
		Verify:           downloader.VerifyNever,
		Getters:          getters,
		RegistryClient:   rc,
		RepositoryConfig: reposFile,
		RepositoryCache:  filepath.Join(cacheDir, "repository"),
		ContentCache:     filepath.Join(cacheDir, "content"),
		SkipUpdate:       true,
	}
	if err := m.Build(); err != nil {
		return nil, hint.With(fmt.Errorf("chart %s: fetch dependencies: %w", chartRel, err),
			"check the repositories Chart.lock names, or vendor the dependencies into "+chartRel+"/charts/")
	}
	// Each chart fetched from a repository is the one its index lists (its digest).
	for _, d := range ch.Lock.Dependencies {
		idx := indexes[strings.TrimSuffix(d.Repository, "/")]
		if idx == nil {
			continue
		}
		if err := checkDigest(idx, d, filepath.Join(dir, "charts")); err != nil {
			return nil, fmt.Errorf("chart %s: dependency %s: %w", chartRel, d.Name, err)
		}
	}
	fetched, err := loader.LoadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("chart %s: load with its fetched dependencies: %w", chartRel, err)
	}
	// Back to the chart as written, with its local dependencies.
	fetched.Metadata.Dependencies, fetched.Lock = ch.Metadata.Dependencies, ch.Lock
	have := map[string]bool{}
	for _, d := range fetched.Dependencies() {
		have[d.Name()] = true
	}
	for _, d := range ch.Dependencies() {
		if !have[d.Name()] {
			fetched.AddDependency(d)
		}
	}
	got := map[string]string{}
	for _, d := range fetched.Dependencies() {
		got[d.Name()] = d.Metadata.Version
	}
	for _, d := range ch.Lock.Dependencies {
		if got[d.Name] != d.Version {
			return nil, fmt.Errorf("chart %s: dependency %s: Chart.lock pins %s, fetched %q", chartRel, d.Name, d.Version, got[d.Name])
		}
	}
	return fetched, nil
}

// ErrInsecureRepository means a chart repository is not https: nothing is fetched from it.
var ErrInsecureRepository = errors.New("not an https:// repository: harmony does not fetch charts over plain http")

// httpsOnly makes t refuse any request that is not https: a repository, or a redirect, to
// http:// (the transport asks its Proxy function about every request, redirects included).
func httpsOnly(t *http.Transport) *http.Transport {
	proxy := t.Proxy
	t.Proxy = func(r *http.Request) (*url.URL, error) {
		if r.URL.Scheme != "https" {
			return nil, fmt.Errorf("%s: %w", r.URL.Redacted(), ErrInsecureRepository)
		}
		if proxy == nil {
			return nil, nil
		}
		return proxy(r)
	}
	return t
}

// checkDigest checks the fetched archive of dependency d in charts against the digest its
// repository's index lists for that version.
func checkDigest(idx *repo.IndexFile, d *chart.Dependency, charts string) error {
	cv, err := idx.Get(d.Name, d.Version)
	if err != nil {
		return fmt.Errorf("the repository's index lists no version %s: %w", d.Version, err)
	}
	want := strings.TrimPrefix(cv.Digest, "sha256:")
	if want == "" {
		return fmt.Errorf("the repository's index lists no digest for %s %s: harmony cannot check what it fetched", d.Name, d.Version)
	}
	f, err := os.Open(filepath.Join(charts, d.Name+"-"+d.Version+".tgz"))
	if err != nil {
		return fmt.Errorf("the fetched archive: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("the fetched archive's sha256 is %s, the repository's index says %s: refused", got, want)
	}
	return nil
}

// hashReq is Helm's digest of Chart.yaml's dependencies and Chart.lock's (Chart.lock's digest).
func hashReq(req, lock []*chart.Dependency) (string, error) {
	data, err := json.Marshal([2][]*chart.Dependency{req, lock})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// remoteOnly rewrites the copy of a chart in dir so that its Chart.yaml and Chart.lock name only
// the dependencies that are not file://, with Chart.lock's digest to match.
func remoteOnly(dir string, ch *chart.Chart) error {
	remote := func(list []*chart.Dependency) []*chart.Dependency {
		var out []*chart.Dependency
		for _, d := range list {
			if !strings.HasPrefix(d.Repository, "file://") {
				out = append(out, d)
			}
		}
		return out
	}
	md := *ch.Metadata
	md.Dependencies = remote(ch.Metadata.Dependencies)
	lock := *ch.Lock
	lock.Dependencies = remote(ch.Lock.Dependencies)
	if len(md.Dependencies) == len(ch.Metadata.Dependencies) && len(lock.Dependencies) == len(ch.Lock.Dependencies) {
		return nil
	}
	var err error
	if lock.Digest, err = hashReq(md.Dependencies, lock.Dependencies); err != nil {
		return err
	}
	for name, v := range map[string]any{"Chart.yaml": &md, "Chart.lock": &lock} {
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}
