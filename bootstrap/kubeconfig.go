package bootstrap

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/NationTech/harmony-agent/installer"
)

// ContextName is the kubeconfig context (and cluster and user) harmony manages.
const ContextName = "harmony"

// UserKubeconfigEnv lets a privileged re-run (through sudo) merge into the invoking user's file.
const UserKubeconfigEnv = "HARMONY_USER_KUBECONFIG"

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

// MergeKubeconfig merges the "harmony" context from the runtime's kubeconfig into the user's
// file: other contexts are never touched; current-context switches only when none is set or
// when switchContext. The previous file is backed up first, the new one written atomically
// (0600). It returns whether the file changed.
func MergeKubeconfig(runtimeKubeconfig []byte, target string, switchContext bool) (bool, error) {
	h, err := renameToHarmony(runtimeKubeconfig)
	if err != nil {
		return false, err
	}
	old, err := os.ReadFile(target)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("read %q: %w", target, err)
	}
	cfg := clientcmdapi.NewConfig()
	if len(bytes.TrimSpace(old)) > 0 {
		if cfg, err = clientcmd.Load(old); err != nil {
			return false, fmt.Errorf("read %q: %w (harmony leaves a kubeconfig it cannot parse alone)", target, err)
		}
	}
	cfg.Clusters[ContextName] = h.Clusters[ContextName]
	cfg.AuthInfos[ContextName] = h.AuthInfos[ContextName]
	cfg.Contexts[ContextName] = h.Contexts[ContextName]
	if cfg.CurrentContext == "" || switchContext {
		cfg.CurrentContext = ContextName
	}
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		return false, err
	}
	if bytes.Equal(out, old) {
		return false, nil
	}
	if len(old) > 0 {
		backup := target + ".harmony-backup-" + strconv.FormatInt(time.Now().Unix(), 10)
		if err := installer.WriteFileAtomic(backup, bytes.NewReader(old), 0o600); err != nil {
			return false, fmt.Errorf("back up %q: %w", target, err)
		}
	}
	if err := installer.WriteFileAtomic(target, bytes.NewReader(out), 0o600); err != nil {
		return false, err
	}
	return true, chownToInvokingUser(target)
}

// RemoveFromKubeconfig deletes the "harmony" context, cluster and user from the user's file.
func RemoveFromKubeconfig(target string) error {
	old, err := os.ReadFile(target)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	cfg, err := clientcmd.Load(old)
	if err != nil {
		return fmt.Errorf("read %q: %w", target, err)
	}
	if _, ok := cfg.Contexts[ContextName]; !ok {
		return nil
	}
	delete(cfg.Contexts, ContextName)
	delete(cfg.Clusters, ContextName)
	delete(cfg.AuthInfos, ContextName)
	if cfg.CurrentContext == ContextName {
		cfg.CurrentContext = ""
	}
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	return installer.WriteFileAtomic(target, bytes.NewReader(out), 0o600)
}
