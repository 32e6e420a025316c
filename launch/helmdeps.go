package launch

import (
	"fmt"
	"io"
	"net/http"
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
	// The repositories Chart.lock names, known to the downloader only for this run.
	repos := repo.NewFile()
	seen := map[string]bool{}
	for _, d := range ch.Lock.Dependencies {
		u := strings.TrimSuffix(d.Repository, "/")
		if u == "" || seen[u] || registry.IsOCI(u) || strings.HasPrefix(u, "file://") {
			continue
		}
		seen[u] = true
		repos.Add(&repo.Entry{Name: fmt.Sprintf("harmony-%d", len(repos.Repositories)), URL: u})
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
	// Every response (index, chart, OCI blob) is capped: a repository cannot fill memory or disk.
	transport := installer.CappedTransport(DefaultMaxRemoteSize)
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
	m := &downloader.Manager{
		Out:              out,
		ChartPath:        dir,
		Verify:           downloader.VerifyNever,
		Getters:          getter.Providers{{Schemes: []string{"http", "https"}, New: timeout(getter.NewHTTPGetter)}, {Schemes: []string{registry.OCIScheme}, New: timeout(getter.NewOCIGetter)}},
		RegistryClient:   rc,
		RepositoryConfig: reposFile,
		RepositoryCache:  filepath.Join(cacheDir, "repository"),
		ContentCache:     filepath.Join(cacheDir, "content"),
	}
	if err := m.Build(); err != nil {
		return nil, hint.With(fmt.Errorf("chart %s: fetch dependencies: %w", chartRel, err),
			"check the repositories Chart.lock names, or vendor the dependencies into "+chartRel+"/charts/")
	}
	fetched, err := loader.LoadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("chart %s: load with its fetched dependencies: %w", chartRel, err)
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
