package launch

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// confinedLookup serves a chart's lookup function within the project: namespaced objects only
// in the release's namespace (a chart could otherwise read every Secret of the cluster into
// what it applies, with the user's credentials), cluster-scoped ones as they are. A lookup
// elsewhere finds nothing, as when the object does not exist.
type confinedLookup struct {
	client    dynamic.Interface
	mapper    meta.RESTMapper
	namespace string
}

func newConfinedLookup(cfg *rest.Config, namespace string) (*confinedLookup, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	groups, err := restmapper.GetAPIGroupResources(dc)
	if err != nil && len(groups) == 0 {
		return nil, fmt.Errorf("discover the cluster's kinds for lookup: %w", err)
	}
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &confinedLookup{client: client, mapper: restmapper.NewDiscoveryRESTMapper(groups), namespace: namespace}, nil
}

// GetClientFor is Helm's engine.ClientProvider.
func (l *confinedLookup) GetClientFor(apiVersion, kind string) (dynamic.NamespaceableResourceInterface, bool, error) {
	gvk := schema.FromAPIVersionAndKind(apiVersion, kind)
	m, err := l.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, false, fmt.Errorf("lookup %s %s: %w", apiVersion, kind, err)
	}
	r := l.client.Resource(m.Resource)
	if m.Scope.Name() != meta.RESTScopeNameNamespace {
		return r, false, nil
	}
	return confinedResource{NamespaceableResourceInterface: r, allowed: l.namespace, gr: m.Resource.GroupResource()}, true, nil
}

// confinedResource is a namespaced resource reachable in one namespace only.
type confinedResource struct {
	dynamic.NamespaceableResourceInterface
	allowed string
	gr      schema.GroupResource
}

func (c confinedResource) Namespace(ns string) dynamic.ResourceInterface {
	if ns == c.allowed {
		return c.NamespaceableResourceInterface.Namespace(ns)
	}
	return nothing{gr: c.gr}
}

// Get and List without a namespace (every namespace) find nothing.
func (c confinedResource) Get(_ context.Context, name string, _ metav1.GetOptions, _ ...string) (*unstructured.Unstructured, error) {
	return nil, apierrors.NewNotFound(c.gr, name)
}

func (c confinedResource) List(context.Context, metav1.ListOptions) (*unstructured.UnstructuredList, error) {
	return nil, apierrors.NewNotFound(c.gr, "")
}

// nothing is a namespace outside the project: every lookup there finds nothing.
type nothing struct {
	dynamic.ResourceInterface
	gr schema.GroupResource
}

func (n nothing) Get(_ context.Context, name string, _ metav1.GetOptions, _ ...string) (*unstructured.Unstructured, error) {
	return nil, apierrors.NewNotFound(n.gr, name)
}

func (n nothing) List(context.Context, metav1.ListOptions) (*unstructured.UnstructuredList, error) {
	return nil, apierrors.NewNotFound(n.gr, "")
}
