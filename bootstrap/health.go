package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// CheckHealth is the health check after a switch, shared by every runtime: the API server's
// /readyz answers ok, a node is Ready, and every Deployment in kube-system (the cluster's own
// system pods: CoreDNS, metrics-server, local-path-provisioner…) is available. It returns nil
// when all hold, else an error naming the first that does not.
func CheckHealth(ctx context.Context, cfg *rest.Config) error {
	if err := APIReady(ctx, cfg); err != nil {
		return err
	}
	ready, err := nodeReady(ctx, cfg)
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	if !ready {
		return errors.New("no node is Ready")
	}
	return systemDeploymentsAvailable(ctx, cfg)
}

func systemDeploymentsAvailable(ctx context.Context, cfg *rest.Config) error {
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	list, err := c.AppsV1().Deployments(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list kube-system deployments: %w", err)
	}
	var waiting []string
	for _, d := range list.Items {
		if !deploymentAvailable(&d) {
			waiting = append(waiting, d.Name)
		}
	}
	if len(waiting) > 0 {
		sort.Strings(waiting)
		return fmt.Errorf("kube-system deployments not available yet: %s", strings.Join(waiting, ", "))
	}
	return nil
}

func deploymentAvailable(d *appsv1.Deployment) bool {
	if d.Spec.Replicas != nil && *d.Spec.Replicas == 0 {
		return true
	}
	if d.Status.ObservedGeneration < d.Generation {
		return false
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// WaitHealth polls CheckHealth with the config from load until it passes or timeout ends; fatal,
// when it returns an error, ends the wait early (the runtime's process died).
func WaitHealth(ctx context.Context, timeout time.Duration, load func() (*rest.Config, error), fatal func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return poll(ctx, 250*time.Millisecond, func() (bool, error, error) {
		if fatal != nil {
			if err := fatal(ctx); err != nil {
				return false, err, nil
			}
		}
		cfg, err := load()
		if err != nil {
			return false, nil, err
		}
		err = CheckHealth(ctx, cfg)
		return err == nil, nil, err
	})
}
