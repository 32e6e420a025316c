package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// What k3s serves to the network. By default the apps a cluster runs answer this machine only:
// a laptop on a shared network must not publish every launched app. k3s binds everything to
// every interface and has no single switch for it, so harmony writes two files k3s reads:
//
//   - a drop-in of k3s's configuration (config.yaml.d, read after config.yaml; "key+" appends to
//     what config.yaml sets): NodePorts on loopback only (kube-proxy's nodeport-addresses), and
//     ServiceLB off, because it publishes every LoadBalancer Service on every interface and
//     cannot bind an address;
//   - a HelmChartConfig for the Traefik k3s bundles: HTTP and HTTPS on 127.0.0.1:80 and :443
//     (host ports bound to loopback), as k3d serves them, instead of a LoadBalancer Service.
//
// The API server (6443) and the kubelet (10250) stay on every interface: pods reach the API
// server through the node's address (an endpoint may not be a loopback address), and the API
// server reaches the kubelet the same way for logs and exec; both refuse anyone without the
// cluster's client certificates or tokens. `harmony bootstrap --expose` removes the drop-in and
// returns Traefik to k3s's defaults; `--expose=false` writes them back.

// exposureDropIn is the name of harmony's drop-in in k3s's config.yaml.d.
const exposureDropIn = "50-harmony-loopback.yaml"

const loopbackDropIn = `# Written by harmony: the apps this cluster runs answer on this machine only.
# "harmony bootstrap --expose" removes this file (serving them on every network interface) and
# "harmony bootstrap --expose=false" writes it back; k3s reads it after config.yaml.
#
# ServiceLB publishes each LoadBalancer Service on every interface and cannot bind an address:
# off. Reach a Service with "harmony forward", or through Traefik on 127.0.0.1:80/443.
disable+:
  - servicelb
# NodePorts on loopback only.
kube-proxy-arg+:
  - nodeport-addresses=127.0.0.0/8
`

const traefikLoopback = `# Written by harmony: Traefik serves HTTP and HTTPS on 127.0.0.1:80 and :443 only (host ports
# bound to loopback), as k3d does, not on a LoadBalancer Service published on every interface.
# "harmony bootstrap --expose" returns it to k3s's defaults.
apiVersion: helm.cattle.io/v1
kind: HelmChartConfig
metadata:
  name: traefik
  namespace: kube-system
spec:
  valuesContent: |-
    service:
      type: ClusterIP
    ports:
      web:
        hostPort: 80
        hostIP: 127.0.0.1
      websecure:
        hostPort: 443
        hostIP: 127.0.0.1
`

const traefikExposed = `# Written by harmony ("harmony bootstrap --expose"): Traefik as k3s ships it, on a LoadBalancer
# Service that ServiceLB publishes on every network interface. "harmony bootstrap --expose=false"
# binds it to 127.0.0.1 again.
apiVersion: helm.cattle.io/v1
kind: HelmChartConfig
metadata:
  name: traefik
  namespace: kube-system
spec:
  valuesContent: ""
`

// ExposureDropIn is harmony's k3s configuration drop-in that keeps apps on loopback.
func (p Paths) ExposureDropIn() string {
	return filepath.Join(p.ConfigFile()+".d", exposureDropIn)
}

// TraefikConfig is harmony's HelmChartConfig for the Traefik k3s bundles, among the manifests k3s
// applies at start and whenever one changes.
func (p Paths) TraefikConfig() string {
	return p.at(sysDataDir + "/server/manifests/harmony-traefik-config.yaml")
}

// Exposed reports whether the cluster's apps are served on every interface (no loopback drop-in).
func (k *K3s) Exposed() bool { return !fileExists(k.Paths.ExposureDropIn()) }

// writeExposure writes the files for expose (true: every interface; false: loopback only) and
// reports whether they changed: k3s reads its configuration only when it starts.
func (k *K3s) writeExposure(expose bool) (changed bool, err error) {
	traefik := traefikLoopback
	if expose {
		traefik = traefikExposed
		if fileExists(k.Paths.ExposureDropIn()) {
			if err := os.Remove(k.Paths.ExposureDropIn()); err != nil {
				return false, err
			}
			changed = true
		}
	} else if b, err := os.ReadFile(k.Paths.ExposureDropIn()); err != nil || string(b) != loopbackDropIn {
		if err := os.MkdirAll(filepath.Dir(k.Paths.ExposureDropIn()), 0o755); err != nil {
			return false, err
		}
		if err := writeFile(k.Paths.ExposureDropIn(), loopbackDropIn, 0o600); err != nil {
			return false, err
		}
		changed = true
	}
	if b, err := os.ReadFile(k.Paths.TraefikConfig()); err != nil || string(b) != traefik {
		if err := os.MkdirAll(filepath.Dir(k.Paths.TraefikConfig()), 0o700); err != nil {
			return false, err
		}
		if err := writeFile(k.Paths.TraefikConfig(), traefik, 0o600); err != nil {
			return false, err
		}
		changed = true
	}
	return changed, nil
}

// removeExposure removes harmony's exposure files (an uninstall).
func (k *K3s) removeExposure() error {
	return errors.Join(removeIfExists(k.Paths.ExposureDropIn()), removeIfExists(k.Paths.TraefikConfig()))
}

// svclbLabel marks the DaemonSets ServiceLB runs to publish a LoadBalancer Service.
const svclbLabel = "svccontroller.k3s.cattle.io/svcname"

// removeServiceLB deletes the DaemonSets ServiceLB left publishing LoadBalancer Services on every
// interface: with ServiceLB off, k3s no longer manages (or removes) them.
func (k *K3s) removeServiceLB(ctx context.Context) (int, error) {
	cfg, err := restConfig(k.Paths.KubeconfigFile())
	if err != nil {
		return 0, err
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return 0, err
	}
	list, err := c.AppsV1().DaemonSets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: svclbLabel})
	if err != nil {
		return 0, fmt.Errorf("list ServiceLB's DaemonSets: %w", err)
	}
	n := 0
	for _, ds := range list.Items {
		if ds.Namespace != metav1.NamespaceSystem {
			continue // ServiceLB runs them in kube-system; another namespace's are someone else's
		}
		if err := c.AppsV1().DaemonSets(ds.Namespace).Delete(ctx, ds.Name, metav1.DeleteOptions{}); err != nil {
			return n, fmt.Errorf("delete ServiceLB's DaemonSet %s/%s: %w", ds.Namespace, ds.Name, err)
		}
		n++
	}
	return n, nil
}

// setExposure serves an installed k3s's apps on every interface or on this machine only, and
// restarts k3s when that changes (it reads its configuration only when it starts). A k3s that
// does not come back with the change gets its previous files back and is started again.
func (k *K3s) setExposure(ctx context.Context, version string, expose bool, opts InstallOptions) (Result, error) {
	where := "on this machine only (127.0.0.1)"
	if expose {
		where = "on every network interface"
	}
	before := []savedFile{saveFile(k.Paths.ExposureDropIn()), saveFile(k.Paths.TraefikConfig())}
	changed, err := k.writeExposure(expose)
	if err != nil {
		return Result{}, errors.Join(err, restoreFiles(before))
	}
	if !changed {
		fmt.Fprintf(k.Out, "the cluster's apps already answer %s\n", where)
		if k.healthy(ctx) {
			target, err := k.mergeKubeconfig(opts.SwitchContext)
			return Result{Version: version, AlreadyHealthy: true, Kubeconfig: target}, err
		}
		fmt.Fprintf(k.Out, "k3s %s is installed but not serving: starting it\n", version)
		return k.run(ctx, version, k.startSteps(opts), opts)
	}
	fmt.Fprintf(k.Out, "the cluster's apps answer %s from now on: restarting k3s\n", where)
	if running, _ := k.supervisor().Running(ctx); running {
		if err := k.supervisor().Stop(ctx); err != nil {
			return Result{}, errors.Join(err, restoreFiles(before))
		}
	}
	res, err := k.run(ctx, version, k.startSteps(opts), opts)
	if err != nil {
		if rerr := restoreFiles(before); rerr != nil {
			return Result{}, errors.Join(err, rerr)
		}
		if _, serr := k.run(context.WithoutCancel(ctx), version, k.startSteps(opts), opts); serr != nil {
			return Result{}, fmt.Errorf("%w; with its previous network settings back, k3s did not start either: %v", err, serr)
		}
		return Result{}, fmt.Errorf("%w; its previous network settings are back and k3s runs with them", err)
	}
	if !expose {
		if n, err := k.removeServiceLB(ctx); err != nil {
			fmt.Fprintf(k.Out, "warning: %v: LoadBalancer Services may still be published on every interface\n", err)
		} else if n > 0 {
			fmt.Fprintf(k.Out, "removed %d ServiceLB DaemonSet(s) that published LoadBalancer Services on every interface\n", n)
		}
	}
	return res, nil
}

// savedFile is a file's content before a change (absent when it did not exist).
type savedFile struct {
	path   string
	data   []byte
	absent bool
}

func saveFile(path string) savedFile {
	b, err := os.ReadFile(path)
	return savedFile{path: path, data: b, absent: errors.Is(err, os.ErrNotExist)}
}

func restoreFiles(files []savedFile) error {
	var errs []error
	for _, f := range files {
		if f.absent {
			errs = append(errs, removeIfExists(f.path))
		} else {
			errs = append(errs, writeFile(f.path, string(f.data), 0o600))
		}
	}
	return errors.Join(errs...)
}
