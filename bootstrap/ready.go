package bootstrap

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// restConfig reads a kubeconfig file into a client config with short timeouts.
func restConfig(path string) (*rest.Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return restConfigFrom(raw)
}

// restConfigFrom parses a kubeconfig into a client config with short timeouts.
func restConfigFrom(raw []byte) (*rest.Config, error) {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(raw)
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 5 * time.Second
	return cfg, nil
}

// APIReady asks the API server's /readyz once.
func APIReady(ctx context.Context, cfg *rest.Config) error {
	c, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	body, err := c.RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("/readyz: %w", err)
	}
	if strings.TrimSpace(string(body)) != "ok" {
		return fmt.Errorf("/readyz: %s", body)
	}
	return nil
}

// nodeReady reports whether a node is Ready.
func nodeReady(ctx context.Context, cfg *rest.Config) (bool, error) {
	c, err := corev1client.NewForConfig(cfg)
	if err != nil {
		return false, err
	}
	nodes, err := c.Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, err
	}
	for _, n := range nodes.Items {
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
	}
	return false, nil
}

// poll calls check every interval until it returns true, ctx ends (returns the last error),
// or check returns a fatal error (abort).
func poll(ctx context.Context, interval time.Duration, check func() (done bool, fatal error, last error)) error {
	var last error
	for {
		done, fatal, err := check()
		if fatal != nil {
			return fatal
		}
		if done {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
			}
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// likelyCause reads a k3s log tail and names the usual culprits.
func likelyCause(logTail string) string {
	// The first pattern found names the cause: the specific ones come before "cgroup".
	causes := []struct{ pattern, cause string }{
		{"address already in use", "a port k3s needs (6443, 10250) is taken by another program: stop it or another Kubernetes (harmony doctor names the port)"},
		{"permission denied", "k3s lacks permissions: run as root (harmony re-runs through sudo)"},
		{"to not run on a host using cgroup v1", cgroupV1Cause},
		{"failed to find memory cgroup", "the memory cgroup is disabled: enable it on the kernel command line (cgroup_memory=1 cgroup_enable=memory) and reboot"},
		{"no space left", "the disk is full"},
		{"cgroup", "the kernel's cgroups are not available to k3s (in a container, run it privileged); harmony doctor checks them"},
	}
	lower := strings.ToLower(logTail)
	for _, c := range causes {
		if strings.Contains(lower, strings.ToLower(c.pattern)) {
			return c.cause
		}
	}
	return ""
}
