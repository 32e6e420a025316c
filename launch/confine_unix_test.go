//go:build unix

package launch_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/NationTech/harmony-agent/internal/hint"
	"github.com/NationTech/harmony-agent/launch"
)

func TestOnlyRegularFilesInsideTheProjectAreRead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		files     map[string]string
		fifos     []string
		links     map[string]string
		file, why string
	}{
		{"FIFO in the manifests folder", map[string]string{"manifests/a.yaml": cmDoc("a")}, []string{"manifests/pipe.yaml"}, nil,
			"manifests/pipe.yaml", "not a regular file"},
		{"FIFO found by the scan", map[string]string{"app/a.yaml": cmDoc("a")}, []string{"app/pipe.yaml"}, nil,
			"app/pipe.yaml", "not a regular file"},
		{"harmony.yaml is a FIFO", map[string]string{"manifests/a.yaml": cmDoc("a")}, []string{"harmony.yaml"}, nil,
			"harmony.yaml", "not a regular file"},
		{"FIFO used by a kustomization", map[string]string{"kustomization.yaml": "resources: [pipe.yaml]\n"}, []string{"pipe.yaml"}, nil,
			"pipe.yaml", "not a regular file"},
		{"FIFO in a configMapGenerator", map[string]string{"kustomization.yaml": "configMapGenerator:\n- name: c\n  files: [pipe.txt]\n"}, []string{"pipe.txt"}, nil,
			"pipe.txt", "not a regular file"},
		{"symlink to /dev/zero", map[string]string{"manifests/a.yaml": cmDoc("a")}, nil, map[string]string{"manifests/zero.yaml": "/dev/zero"},
			"manifests/zero.yaml", "outside the project"},
		{"kustomize resource linked to /dev/zero", map[string]string{"kustomization.yaml": "resources: [zero.yaml]\n"}, nil, map[string]string{"zero.yaml": "/dev/zero"},
			"zero.yaml", "outside the project"},
		{"kustomization linked to /dev/zero", nil, nil, map[string]string{"kustomization.yaml": "/dev/zero"},
			"kustomization.yaml", "outside the project"},
		{"relative symlink leaving the project", map[string]string{"manifests/a.yaml": cmDoc("a")}, nil, map[string]string{"manifests/up.yaml": "../../outside.yaml"},
			"manifests/up.yaml", "outside the project"},
		{"harmony.yaml lists a linked folder outside", map[string]string{"harmony.yaml": "manifests: [etc]\n"}, nil, map[string]string{"etc": "/etc"},
			"etc", "outside the project"},
		{"kustomize base linked outside", map[string]string{"kustomization.yaml": "resources: [base]\n"}, nil, map[string]string{"base": "../elsewhere"},
			"base", "outside the project"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := tree(t, tt.files)
			if err := os.MkdirAll(root, 0o755); err != nil {
				t.Fatal(err)
			}
			outside := filepath.Dir(root)
			if err := os.WriteFile(filepath.Join(outside, "outside.yaml"), []byte(cmDoc("secret")), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(outside, "elsewhere"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(outside, "elsewhere", "kustomization.yaml"), []byte("resources: []\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, f := range tt.fifos {
				if err := syscall.Mkfifo(filepath.Join(root, f), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for l, target := range tt.links {
				if err := os.Symlink(target, filepath.Join(root, l)); err != nil {
					t.Fatal(err)
				}
			}
			objs, err := discoverAndRender(t, root, launch.RenderOptions{})
			wantRefused(t, objs, err, tt.file, tt.why)
		})
	}
}

// gitRecorder puts a stand-in git first on PATH that records every run (and fails).
func gitRecorder(t *testing.T) (record string) {
	t.Helper()
	bin := t.TempDir()
	record = filepath.Join(bin, "runs")
	script := fmt.Sprintf("#!/bin/sh\necho \"$*\" >> %q\nexit 1\n", record)
	if err := os.WriteFile(filepath.Join(bin, "git"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return record
}

func TestRemoteKustomizationsAreRefused(t *testing.T) {
	// Not parallel: it puts a stand-in git first on PATH.
	record := gitRecorder(t)
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		fmt.Fprint(w, cmDoc("remote"))
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	remote := []string{
		srv.URL + "/cm.yaml",
		"https://" + host + "/org/repo//deploy?ref=v1",
		"git@" + host + ":org/base.git",
		"ssh://git@" + host + "/org/comp.git",
		srv.URL + "/patch.yaml",
		srv.URL + "/data.txt",
	}
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"resources, bases and components", map[string]string{
			"kustomization.yaml": fmt.Sprintf("resources:\n- cm.yaml\n- %s\n- %s\nbases:\n- %s\ncomponents:\n- %s\n", remote[0], remote[1], remote[2], remote[3]),
			"cm.yaml":            cmDoc("local"),
		}, []string{"kustomization.yaml: " + remote[0], "kustomization.yaml: " + remote[1], "kustomization.yaml: " + remote[2], "kustomization.yaml: " + remote[3]}},
		{"a local base's remote resource", map[string]string{
			"deploy/dev/kustomization.yaml":  "resources: [../base]\n",
			"deploy/base/kustomization.yaml": fmt.Sprintf("resources:\n- %s\n", remote[1]),
		}, []string{"deploy/base/kustomization.yaml: " + remote[1]}},
		{"patch and generator files", map[string]string{
			"kustomization.yaml": fmt.Sprintf("resources: [cm.yaml]\npatches:\n- path: %s\nconfigMapGenerator:\n- name: g\n  files: [%s]\n", remote[4], remote[5]),
			"cm.yaml":            cmDoc("local"),
		}, []string{"kustomization.yaml: " + remote[4], "kustomization.yaml: " + remote[5]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := tree(t, tt.files)
			objs, err := discoverAndRender(t, root, launch.RenderOptions{})
			if !errors.Is(err, launch.ErrRemote) {
				t.Fatalf("rendered %d objects, error %v; want ErrRemote", len(objs), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not name %q:\n%v", w, err)
				}
			}
			if !strings.Contains(strings.Join(hint.Of(err), "\n"), "--allow-remote") {
				t.Errorf("hints %q do not mention --allow-remote", hint.Of(err))
			}
		})
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests reached the server", n)
	}
	if runs, err := os.ReadFile(record); err == nil {
		t.Errorf("git was run:\n%s", runs)
	}
}

// gitRepo makes a repository with a kustomize base in deploy/, committed on branch main.
func gitRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo.git")
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "."},
		{"-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "base"}} {
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return dir
}

// gitServer serves the repositories under root over https with git's own smart-HTTP backend,
// as a git host does; it returns the server's URL.
func gitServer(t *testing.T, root string, userAndPassword ...string) string {
	t.Helper()
	backend, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v", err)
	}
	git := &cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(backend)), "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/info/refs") && !strings.HasSuffix(r.URL.Path, "/git-upload-pack") {
			http.NotFound(w, r) // not a file: kustomize's reference is then cloned
			return
		}
		if len(userAndPassword) == 2 {
			if u, p, ok := r.BasicAuth(); !ok || u != userAndPassword[0] || p != userAndPassword[1] {
				w.Header().Set("WWW-Authenticate", `Basic realm="private"`)
				http.Error(w, "private", http.StatusUnauthorized)
				return
			}
		}
		git.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestAllowRemote(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("these tests need git: %v", err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/cm.yaml":
			fmt.Fprint(w, cmDoc("from-http"))
		case "/endless.yaml":
			for ctx := r.Context(); ctx.Err() == nil; {
				if _, err := w.Write(make([]byte, 64<<10)); err != nil {
					return
				}
			}
		case "/hang.yaml":
			<-r.Context().Done()
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	repo := gitRepo(t, map[string]string{
		"deploy/kustomization.yaml": "resources: [cm.yaml]\n",
		"deploy/cm.yaml":            cmDoc("from-git"),
		"comp/kustomization.yaml":   "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nlabels:\n- pairs: {via: component}\n",
		"big/kustomization.yaml":    "resources: [cm.yaml]\n",
		"big/cm.yaml":               cmDoc("big") + "data:\n  blob: " + strings.Repeat("x", 256<<10) + "\n",
	})
	gitURL := gitServer(t, filepath.Dir(repo)) + "/" + filepath.Base(repo)
	gitBase := gitURL + "//deploy?ref=main"
	// The name kustomize's reference had in the checkout's folder before: a repository could
	// compute it and read a checkout's file through its own configMapGenerator.
	sum := sha256.Sum256([]byte(gitBase))
	oldMount := ".harmony-remote-" + hex.EncodeToString(sum[:6])
	tests := []struct {
		name      string
		kust      string
		o         launch.RenderOptions
		wantNames string
		wantErr   string
	}{
		{"an http resource, a git base and a git component",
			fmt.Sprintf("resources:\n- cm.yaml\n- %s/cm.yaml\n- %s\ncomponents:\n- %s//comp?ref=main\n", srv.URL, gitBase, gitURL),
			launch.RenderOptions{}, "local,from-http,from-git", ""},
		{"a local repository as a git base", fmt.Sprintf("resources:\n- file://%s//deploy?ref=main\n", repo),
			launch.RenderOptions{}, "", "over https:// or ssh only"},
		{"a checkout read through the repository's own generator",
			fmt.Sprintf("resources:\n- %s\nconfigMapGenerator:\n- name: stolen\n  files: [%s/deploy/cm.yaml]\n", gitBase, oldMount),
			launch.RenderOptions{}, "", oldMount},
		{"endless http body", fmt.Sprintf("resources:\n- %s/endless.yaml\n", srv.URL),
			launch.RenderOptions{MaxRemoteSize: 1 << 20}, "", "larger than"},
		{"http server that never answers", fmt.Sprintf("resources:\n- %s/hang.yaml\n", srv.URL),
			launch.RenderOptions{RemoteTimeout: time.Second}, "", "not fetched within 1s"},
		{"git checkout over the size cap", fmt.Sprintf("resources:\n- %s//big?ref=main\n", gitURL),
			launch.RenderOptions{MaxRemoteSize: 64 << 10}, "", "larger than 64 KiB"},
		{"remote patch stays refused", fmt.Sprintf("resources: [cm.yaml]\npatches:\n- path: %s/cm.yaml\n", srv.URL),
			launch.RenderOptions{}, "", "fetches only resources, bases and components"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := tree(t, map[string]string{"kustomization.yaml": tt.kust, "cm.yaml": cmDoc("local")})
			tt.o.AllowRemote = true
			objs, err := discoverAndRender(t, root, tt.o)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, o := range objs {
				names = append(names, o.GetName())
				if o.GetLabels()["via"] != "component" {
					t.Errorf("%s lacks the remote component's label: %v", o.GetName(), o.GetLabels())
				}
			}
			if strings.Join(names, ",") != tt.wantNames {
				t.Fatalf("rendered %v, want %s", names, tt.wantNames)
			}
			if b, err := os.ReadFile(filepath.Join(root, "kustomization.yaml")); err != nil || string(b) != tt.kust {
				t.Fatalf("the repository's kustomization changed: %q", b)
			}
		})
	}
}

// --allow-remote fetches anonymously: a repository naming a private repository of the user's
// does not get it through the user's git credentials (their credential helper here). Not
// parallel: it sets the git configuration of the whole process.
func TestAllowRemoteUsesNoCredentialsOfTheUser(t *testing.T) {
	repo := gitRepo(t, map[string]string{"deploy/kustomization.yaml": "resources: [cm.yaml]\n", "deploy/cm.yaml": cmDoc("private")})
	base := gitServer(t, filepath.Dir(repo), "user", "s3cret")
	url := base + "/" + filepath.Base(repo)
	store := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(store, []byte(strings.Replace(base, "https://", "https://user:s3cret@", 1)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	global := filepath.Join(t.TempDir(), "gitconfig")
	if err := os.WriteFile(global, []byte("[credential]\n\thelper = store --file="+store+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GIT_CONFIG_GLOBAL", global)
	// The user's own git reaches it with those credentials.
	if out, err := exec.Command("git", "ls-remote", url).CombinedOutput(); err != nil {
		t.Fatalf("the user's git: %v\n%s", err, out)
	}
	root := tree(t, map[string]string{"kustomization.yaml": "resources:\n- " + url + "//deploy?ref=main\n"})
	if objs, err := discoverAndRender(t, root, launch.RenderOptions{AllowRemote: true, RemoteTimeout: 30 * time.Second}); err == nil {
		t.Fatalf("the repository fetched the user's private repository with the user's credentials: %d objects", len(objs))
	}
}
