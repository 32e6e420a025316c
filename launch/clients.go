package launch

import (
	"fmt"

	"k8s.io/client-go/discovery"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	discoveryv1client "k8s.io/client-go/kubernetes/typed/discovery/v1"
	rbacv1client "k8s.io/client-go/kubernetes/typed/rbac/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
)

// clients are the typed clients of the API groups launch reads, sharing one HTTP client and
// one rate limiter as client-go's clientset does. Not the clientset itself: building it reaches a client for every
// API group Kubernetes has, and the linker then keeps them all (about 2 MiB of the binary,
// scripts/binsize).
type clients struct {
	core      corev1client.CoreV1Interface
	endpoints discoveryv1client.DiscoveryV1Interface
	rbac      rbacv1client.RbacV1Interface
	discovery discovery.DiscoveryInterface
}

func newClients(cfg *rest.Config) (*clients, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.RateLimiter == nil && cfg.QPS > 0 {
		if cfg.Burst <= 0 {
			return nil, fmt.Errorf("burst is required to be greater than 0 when RateLimiter is not set and QPS is set to greater than 0")
		}
		cfg.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(cfg.QPS, cfg.Burst)
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	var c clients
	if c.core, err = corev1client.NewForConfigAndClient(cfg, hc); err != nil {
		return nil, err
	}
	if c.endpoints, err = discoveryv1client.NewForConfigAndClient(cfg, hc); err != nil {
		return nil, err
	}
	if c.rbac, err = rbacv1client.NewForConfigAndClient(cfg, hc); err != nil {
		return nil, err
	}
	if c.discovery, err = discovery.NewDiscoveryClientForConfigAndClient(cfg, hc); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *clients) CoreV1() corev1client.CoreV1Interface                { return c.core }
func (c *clients) DiscoveryV1() discoveryv1client.DiscoveryV1Interface { return c.endpoints }
func (c *clients) RbacV1() rbacv1client.RbacV1Interface                { return c.rbac }
func (c *clients) Discovery() discovery.DiscoveryInterface             { return c.discovery }
