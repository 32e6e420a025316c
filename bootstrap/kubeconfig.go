package bootstrap

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// ContextName is the kubeconfig context (and cluster and user) harmony manages.
const ContextName = "harmony"

// UserKubeconfigEnv lets a privileged re-run (through sudo) merge into the invoking user's file.
const UserKubeconfigEnv = "HARMONY_USER_KUBECONFIG"

// ErrKubeconfigRefused means harmony, running as root for a user, will not write the kubeconfig
// named: it lies outside that user's home, goes through a link, or belongs to someone else.
var ErrKubeconfigRefused = errors.New("kubeconfig refused")

// refusal is an ErrKubeconfigRefused with the reason as its message.
type refusal struct{ msg string }

func (r *refusal) Error() string        { return r.msg }
func (r *refusal) Is(target error) bool { return target == ErrKubeconfigRefused }

func refuse(msg string, hints ...string) error { return hint.With(&refusal{msg}, hints...) }

// User is the person harmony acts for when it runs as root through sudo: the kubeconfig it
// writes is theirs.
type User struct {
	UID, GID int
	Home     string
}

// fileMeta is the owner and mode a rewritten file keeps (uid -1: the writer's own).
type fileMeta struct {
	exists   bool
	mode     os.FileMode
	uid, gid int
}

// UserKubeconfigPath returns the kubeconfig file harmony merges into: the first KUBECONFIG entry,
// else ~/.kube/config.
func UserKubeconfigPath() (string, error) {
	if p := os.Getenv(UserKubeconfigEnv); p != "" {
		return p, nil
	}
	if list := filepath.SplitList(os.Getenv("KUBECONFIG")); len(list) > 0 && list[0] != "" {
		return list[0], nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the kubeconfig: %w (set KUBECONFIG)", err)
	}
	return filepath.Join(home, ".kube", "config"), nil
}

// UserKubeconfig is the user's kubeconfig file, as harmony reads and rewrites it.
//
// Privilege confusion: when harmony runs as root for a user (For is set), the file must lie in
// that user's home, and the file and every directory from the home down must be the user's own,
// reached without following a link; anything else is refused (ErrKubeconfigRefused). Ownership
// changes only on what harmony itself creates, through the open file. A rewrite and its backup
// keep the previous file's owner and mode.
type UserKubeconfig struct {
	Path string
	// For is the user harmony acts for as root (through sudo); nil when it writes as itself.
	For *User
}

// NewUserKubeconfig returns the kubeconfig harmony merges into (UserKubeconfigPath), for the
// user who ran sudo when harmony runs as root through it.
func NewUserKubeconfig() (UserKubeconfig, error) {
	path, err := UserKubeconfigPath()
	if err != nil {
		return UserKubeconfig{}, err
	}
	u, err := invokingUserFor(path)
	if err != nil {
		return UserKubeconfig{}, err
	}
	return UserKubeconfig{Path: path, For: u}, nil
}

// Check reports, without writing anything, whether harmony may write the file.
func (k UserKubeconfig) Check() error {
	d, err := openKubeconfigDir(k.Path, k.For, false)
	if err != nil || d == nil {
		return err
	}
	defer d.Close()
	_, _, err = readIn(d, filepath.Base(k.Path), k.Path, k.For)
	return err
}

// update rewrites the file with change(old); change returns nil for "nothing to do". Missing
// directories are created when create is set (else there is nothing to do). A previous file is
// backed up first when backup is set.
func (k UserKubeconfig) update(create, backup bool, change func(old []byte) ([]byte, error)) (bool, error) {
	d, err := openKubeconfigDir(k.Path, k.For, create)
	if err != nil || d == nil {
		return false, err
	}
	defer d.Close()
	name := filepath.Base(k.Path)
	old, meta, err := readIn(d, name, k.Path, k.For)
	if err != nil {
		return false, err
	}
	out, err := change(old)
	if err != nil || out == nil {
		return false, err
	}
	if !meta.exists {
		meta = fileMeta{mode: 0o600, uid: -1}
		if k.For != nil {
			meta.uid, meta.gid = k.For.UID, k.For.GID
		}
	}
	if backup && len(old) > 0 {
		b := name + ".harmony-backup-" + strconv.FormatInt(time.Now().Unix(), 10)
		if err := writeIn(d, b, old, meta); err != nil {
			return false, fmt.Errorf("back up %q: %w", k.Path, err)
		}
	}
	return true, writeIn(d, name, out, meta)
}

// Merge merges the "harmony" context from the runtime's kubeconfig into the file: other contexts
// are never touched; current-context switches only when none is set or when switchContext. The
// previous file is backed up first and the new one written atomically. It returns whether the
// file changed.
func (k UserKubeconfig) Merge(runtimeKubeconfig []byte, switchContext bool) (bool, error) {
	h, err := renameToHarmony(runtimeKubeconfig)
	if err != nil {
		return false, err
	}
	return k.update(true, true, func(old []byte) ([]byte, error) {
		cfg := clientcmdapi.NewConfig()
		if len(bytes.TrimSpace(old)) > 0 {
			if cfg, err = clientcmd.Load(old); err != nil {
				return nil, fmt.Errorf("read %q: %w (harmony leaves a kubeconfig it cannot parse alone)", k.Path, err)
			}
		}
		cfg.Clusters[ContextName] = h.Clusters[ContextName]
		cfg.AuthInfos[ContextName] = h.AuthInfos[ContextName]
		cfg.Contexts[ContextName] = h.Contexts[ContextName]
		if cfg.CurrentContext == "" || switchContext {
			cfg.CurrentContext = ContextName
		}
		out, err := clientcmd.Write(*cfg)
		if err != nil || bytes.Equal(out, old) {
			return nil, err
		}
		return out, nil
	})
}

// Remove deletes the "harmony" context, cluster and user from the file.
func (k UserKubeconfig) Remove() error {
	_, err := k.update(false, false, func(old []byte) ([]byte, error) {
		if len(bytes.TrimSpace(old)) == 0 {
			return nil, nil
		}
		cfg, err := clientcmd.Load(old)
		if err != nil {
			return nil, fmt.Errorf("read %q: %w", k.Path, err)
		}
		if _, ok := cfg.Contexts[ContextName]; !ok {
			return nil, nil
		}
		delete(cfg.Contexts, ContextName)
		delete(cfg.Clusters, ContextName)
		delete(cfg.AuthInfos, ContextName)
		if cfg.CurrentContext == ContextName {
			cfg.CurrentContext = ""
		}
		return clientcmd.Write(*cfg)
	})
	return err
}

// invokingUserFor returns the user a kubeconfig at path is written for: the user who ran sudo,
// unless path lies in root's own home (after "sudo -i").
func invokingUserFor(path string) (*User, error) {
	u, err := InvokingUser()
	if u == nil || err != nil {
		return u, err
	}
	return actingFor(u, ownHome(), path), nil
}

// actingFor returns u, or nil (harmony writes as root, for root) when path lies in root's home
// rootHome, which the user cannot touch. Root's home counts only when it is a home of its own:
// not "/" (as in some containers), not above the user's home.
func actingFor(u *User, rootHome, path string) *User {
	if rootHome != "" && filepath.Clean(rootHome) != "/" && within(rootHome, path) && !within(rootHome, u.Home) {
		return nil
	}
	return u
}

// within reports whether path lies inside dir (lexically).
func within(dir, path string) bool {
	abs, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	rel, err := filepath.Rel(filepath.Clean(dir), abs)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// MergeKubeconfig merges the runtime's "harmony" context into target, for the user who ran sudo
// when harmony runs as root through it (see UserKubeconfig.Merge).
func MergeKubeconfig(runtimeKubeconfig []byte, target string, switchContext bool) (bool, error) {
	u, err := invokingUserFor(target)
	if err != nil {
		return false, err
	}
	return UserKubeconfig{Path: target, For: u}.Merge(runtimeKubeconfig, switchContext)
}

// RemoveFromKubeconfig deletes the "harmony" context, cluster and user from target (see
// UserKubeconfig.Remove).
func RemoveFromKubeconfig(target string) error {
	u, err := invokingUserFor(target)
	if err != nil {
		return err
	}
	return UserKubeconfig{Path: target, For: u}.Remove()
}

// harmonyKubeconfig returns the runtime's kubeconfig, serialised, with its single cluster, user
// and context named "harmony" (what Runtime.Kubeconfig returns).
func harmonyKubeconfig(raw []byte) ([]byte, error) {
	cfg, err := renameToHarmony(raw)
	if err != nil {
		return nil, err
	}
	return clientcmd.Write(*cfg)
}

// renameToHarmony returns the runtime's kubeconfig with its single cluster, user and context
// named "harmony".
func renameToHarmony(raw []byte) (*clientcmdapi.Config, error) {
	src, err := clientcmd.Load(raw)
	if err != nil {
		return nil, fmt.Errorf("read the runtime's kubeconfig: %w", err)
	}
	ctx, ok := src.Contexts[src.CurrentContext]
	if !ok {
		return nil, errors.New("the runtime's kubeconfig has no current context")
	}
	cluster, user := src.Clusters[ctx.Cluster], src.AuthInfos[ctx.AuthInfo]
	if cluster == nil || user == nil {
		return nil, errors.New("the runtime's kubeconfig context names a missing cluster or user")
	}
	out := clientcmdapi.NewConfig()
	out.Clusters[ContextName] = cluster
	out.AuthInfos[ContextName] = user
	out.Contexts[ContextName] = &clientcmdapi.Context{Cluster: ContextName, AuthInfo: ContextName}
	out.CurrentContext = ContextName
	return out, nil
}
