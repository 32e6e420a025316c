package launch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/kustomize/api/resource"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/NationTech/harmony-agent/installer"
	"github.com/NationTech/harmony-agent/internal/hint"
)

// Limits of --allow-remote.
const (
	// DefaultRemoteTimeout bounds fetching all of a launch's remote resources.
	DefaultRemoteTimeout = 2 * time.Minute
	// DefaultMaxRemoteSize caps one remote resource: a downloaded file or a git checkout.
	DefaultMaxRemoteSize = 64 << 20
	// remoteRounds bounds remote resources that refer to further remote resources.
	remoteRounds = 5
)

// fetchRemotes makes the kustomizations in kdirs (root-relative) use local copies of their
// remote resources, bases and components: harmony fetches each one itself (an HTTP GET, or a
// shallow git checkout without submodules) within o's time limit and size cap, and kustomize
// then reads the copies through the same confined, capped view as the project. kustomize never
// reaches the network. Remote references in other fields (patches, generator files, ...) stay
// refused.
func (t *tree) fetchRemotes(ctx context.Context, kdirs []string, o RenderOptions) error {
	timeout := o.RemoteTimeout
	if timeout <= 0 {
		timeout = DefaultRemoteTimeout
	}
	maxSize := o.MaxRemoteSize
	if maxSize <= 0 {
		maxSize = DefaultMaxRemoteSize
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	f := &fetcher{t: t, maxSize: maxSize, timeout: timeout, checkouts: map[string]string{}}
	for round := 0; ; round++ {
		var refs []remoteRef
		for _, d := range kdirs {
			r, err := t.remoteRefs(d)
			if err != nil {
				return err
			}
			refs = append(refs, r...)
		}
		if len(refs) == 0 {
			return nil
		}
		var refused []remoteRef
		for _, r := range refs {
			if r.field != "resources" && r.field != "components" {
				refused = append(refused, r)
			}
		}
		if len(refused) > 0 {
			return hint.With(fmt.Errorf("%w: --allow-remote fetches only resources, bases and components:\n  %s", ErrRemote, refLines(refused)),
				"copy these files into the repository")
		}
		if round == remoteRounds {
			return fmt.Errorf("%w: remote resources refer to further remote resources more than %d levels deep:\n  %s", ErrRemote, remoteRounds, refLines(refs))
		}
		var files []string
		byFile := map[string][]remoteRef{}
		for _, r := range refs {
			if byFile[r.file] == nil {
				files = append(files, r.file)
			}
			byFile[r.file] = append(byFile[r.file], r)
		}
		for _, file := range files {
			local := map[string]string{}
			for _, r := range byFile[file] {
				l, err := f.fetch(ctx, r)
				if err != nil {
					return err
				}
				local[r.ref] = l
			}
			if err := t.rewrite(file, local); err != nil {
				return err
			}
		}
	}
}

func refLines(refs []remoteRef) string {
	lines := make([]string, len(refs))
	for i, r := range refs {
		lines[i] = r.String()
	}
	return strings.Join(lines, "\n  ")
}

type fetcher struct {
	t         *tree
	maxSize   int64
	timeout   time.Duration
	checkouts map[string]string // git reference → checkout folder, so each is fetched once
}

// fetch brings one remote reference next to its kustomization and returns the path the
// kustomization should use instead: ".harmony-remote-<id>.yaml" for a file,
// ".harmony-remote-<id>[/path]" for a git checkout. As kustomize does, an http(s) resource is
// first tried as a file, then as a git repository.
func (f *fetcher) fetch(ctx context.Context, r remoteRef) (string, error) {
	// A name the repository cannot compute: its own kustomizations cannot read a checkout (or
	// a fetched file) through a path of their own.
	var nonce [8]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return "", err
	}
	id := ".harmony-remote-" + hex.EncodeToString(nonce[:])
	dir, err := f.t.resolve(path.Dir(r.file))
	if err != nil {
		return "", err
	}
	m, sub := f.t.route(dir)
	u, perr := url.Parse(r.ref)
	isHTTP := perr == nil && (u.Scheme == "http" || u.Scheme == "https")
	if isHTTP && r.field == "resources" {
		b, err := f.get(ctx, r.ref)
		if err == nil {
			if m.overlay == nil {
				m.overlay = map[string][]byte{}
			}
			m.overlay[path.Join(sub, id+".yaml")] = b
			return id + ".yaml", nil
		}
		if !r.git || !errors.Is(err, installer.ErrHTTPStatus) {
			return "", fmt.Errorf("%s: fetch %s: %w", r.file, r.ref, err)
		}
	}
	if !r.git {
		return "", fmt.Errorf("%s: %s: %w: a %s entry must be a folder, which only a git repository can give", r.file, r.ref, ErrRemote, r.field)
	}
	o := (&resource.Origin{}).Append(r.ref)
	if !networkRepo(o.Repo) {
		return "", fmt.Errorf("%s: %s: %w: --allow-remote fetches git repositories over https:// or ssh only, never a local one", r.file, r.ref, ErrRemote)
	}
	inRepo := o.Path
	if inRepo == "notCloned" {
		inRepo = "" // kustomize's placeholder: the reference names the repository's root
	}
	checkout, ok := f.checkouts[o.Repo+"?"+o.Ref]
	if !ok {
		checkout, err = f.gitCheckout(ctx, o.Repo, o.Ref)
		if err != nil {
			return "", fmt.Errorf("%s: fetch %s: %w", r.file, r.ref, err)
		}
		f.checkouts[o.Repo+"?"+o.Ref] = checkout
	}
	mt, err := openTree(checkout, f.t.maxFile, 0)
	if err != nil {
		return "", err
	}
	mt.budget, mt.label = f.t.budget, r.ref
	if m.mounts == nil {
		m.mounts = map[string]*tree{}
	}
	if old, ok := m.mounts[path.Join(sub, id)]; ok {
		old.Close()
	}
	m.mounts[path.Join(sub, id)] = mt
	return path.Join(id, inRepo), nil
}

// get downloads a remote file through the installer (proxies from the environment, bounded
// connect and header timeouts), capped at the smaller of the remote and the per-file caps.
func (f *fetcher) get(ctx context.Context, u string) ([]byte, error) {
	max := min(f.maxSize, f.t.maxFile)
	b, err := (&installer.Fetcher{Client: installer.NewHTTPClient(), Retries: 1, Backoff: 500 * time.Millisecond}).Get(ctx, u, max)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("not fetched within %s, the --allow-remote time limit: %w", f.timeout, ctx.Err())
		}
		return nil, err
	}
	return b, nil
}

// gitCheckout fetches one commit of a repository (no history, no tags, no submodules) into a
// temporary folder, killing git when it takes longer than the time limit or the folder grows
// over the size cap. git never prompts for credentials (it uses what the user configured).
func (f *fetcher) gitCheckout(ctx context.Context, repo, ref string) (string, error) {
	dir, err := os.MkdirTemp("", "harmony-remote-")
	if err != nil {
		return "", err
	}
	f.t.cleanup = append(f.t.cleanup, func() { os.RemoveAll(dir) })
	ctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if dirSize(dir) > f.maxSize {
					cancel(fmt.Errorf("the checkout is larger than %s, the --allow-remote limit: %w", size(f.maxSize), ErrTooLarge))
					return
				}
			}
		}
	}()
	defer wg.Wait()
	defer cancel(nil)
	if ref == "" {
		ref = "HEAD"
	}
	for _, args := range [][]string{
		{"init", "-q"},
		{"fetch", "-q", "--depth=1", "--no-tags", "--no-recurse-submodules", "--", repo, ref},
		{"checkout", "-q", "FETCH_HEAD"},
	} {
		// Only https and ssh: never file (a local repository), ext (a command), git or http.
		// Anonymous: none of the user's git configuration, credential helpers, SSH keys or agent
		// (a repository would otherwise fetch the user's private repositories into what it
		// applies), and nothing that can prompt.
		cmd := exec.CommandContext(ctx, "git", append([]string{"-c", "protocol.allow=never", "-c", "protocol.https.allow=always",
			"-c", "protocol.ssh.allow=always", "-c", "credential.helper=", "-c", "core.askPass=", "-c", "advice.detachedHead=false", "-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=", "SSH_ASKPASS=", "SSH_ASKPASS_REQUIRE=never",
			"GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_CONFIG_NOSYSTEM=1", "SSH_AUTH_SOCK=",
			"GIT_SSH_COMMAND=ssh -F "+os.DevNull+" -o BatchMode=yes -o IdentityAgent=none -o IdentitiesOnly=yes -o IdentityFile="+os.DevNull+" -o StrictHostKeyChecking=yes")
		cmd.WaitDelay = 2 * time.Second // a helper git started may hold the output open
		out := &tailBuffer{max: 2048}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Run(); err != nil {
			switch cause := context.Cause(ctx); {
			case errors.Is(cause, ErrTooLarge):
				return "", cause
			case errors.Is(cause, context.DeadlineExceeded):
				return "", fmt.Errorf("not fetched within %s, the --allow-remote time limit: %w", f.timeout, cause)
			case cause != nil:
				return "", cause
			}
			return "", fmt.Errorf("git %s: %v: %s", args[0], err, Sanitize(strings.TrimSpace(out.String())))
		}
	}
	if dirSize(dir) > f.maxSize {
		return "", fmt.Errorf("the checkout is larger than %s, the --allow-remote limit: %w", size(f.maxSize), ErrTooLarge)
	}
	return dir, nil
}

// dirSize adds up the sizes of the files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (w *tailBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if len(w.b) > w.max {
		w.b = w.b[len(w.b)-w.max:]
	}
	return len(p), nil
}

func (w *tailBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}

// rewrite makes a kustomization file use local copies: local maps each remote reference in its
// resources, bases and components to the path replacing it. The rewritten file is what the
// tree serves from then on; the repository is not changed.
func (t *tree) rewrite(file string, local map[string]string) error {
	res, err := t.resolve(file)
	if err != nil {
		return err
	}
	m, sub := t.route(res)
	raw, ok := m.overlay[sub]
	if !ok {
		if raw, err = t.readFile(file); err != nil {
			return err
		}
	}
	rn, err := kyaml.Parse(string(raw))
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	for _, field := range []string{"resources", "bases", "components"} {
		f := rn.Field(field)
		if f == nil || f.Value == nil {
			continue
		}
		for _, item := range f.Value.YNode().Content {
			if l, ok := local[item.Value]; ok {
				item.Value, item.Style = l, 0
			}
		}
	}
	out, err := rn.String()
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if m.overlay == nil {
		m.overlay = map[string][]byte{}
	}
	m.overlay[sub] = []byte(out)
	return nil
}

// networkRepo reports whether a git repository kustomize would clone is a network one: https://,
// ssh:// or scp-like (git@host:path). A file:// URL or a local path is not: --allow-remote allows
// network fetches, not reads of the user's other folders.
func networkRepo(repo string) bool {
	if u, err := url.Parse(repo); err == nil && u.Scheme != "" && strings.Contains(repo, "://") {
		return (u.Scheme == "https" || u.Scheme == "ssh") && u.Host != ""
	}
	at, colon := strings.Index(repo, "@"), strings.Index(repo, ":")
	return at > 0 && colon > at+1 && !strings.Contains(repo[:colon], "/")
}
