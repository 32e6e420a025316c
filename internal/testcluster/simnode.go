package testcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// simNode is the test cluster's simulated node: a stand-in for a kubelet, built into the test's
// own process (nothing for scripts/testenv to build), that plays kwok's "fast" pod stages. It
// keeps one Node Ready (its lease and status renewed, so the node lifecycle controller never
// taints it) and moves every pod the scheduler binds to it:
//   - a pod running FailingImage waits in ErrImagePull, with a Warning event "Failed to pull
//     image", as a kubelet whose pull failed;
//   - any other pod goes Running and Ready at once, with a pod IP of its own (10.0.0.0/16);
//   - a running pod of a Job then completes (Succeeded, its containers terminated with exit 0);
//   - a deleted pod goes at once (finalizers dropped, deleted with no grace period), as a
//     kubelet confirms a deletion.
//
// Nothing runs: a test that needs a process to answer uses WithRealNode.
type simNode struct {
	client kubernetes.Interface
	log    io.Writer
	logMu  sync.Mutex
	queue  workqueue.TypedRateLimitingInterface[types.NamespacedName]
	store  cache.Store
	nextIP atomic.Uint32
	cancel context.CancelFunc
	done   sync.WaitGroup
}

const (
	simNodeIP       = "10.0.0.1"
	simLeaseSeconds = 40
	simWorkers      = 4
)

// startSimNode registers the simulated node, starts playing it and returns once it is Ready.
func startSimNode(client kubernetes.Interface, log io.Writer) (*simNode, error) {
	ctx, cancel := context.WithCancel(context.Background())
	n := &simNode{
		client: client,
		log:    log,
		cancel: cancel,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[types.NamespacedName](50*time.Millisecond, 5*time.Second),
			workqueue.TypedRateLimitingQueueConfig[types.NamespacedName]{Name: "simulated-node"}),
	}
	n.nextIP.Store(1) // 10.0.0.1 is the node's own address
	if err := n.register(ctx); err != nil {
		cancel()
		return nil, err
	}
	lw := cache.NewListWatchFromClient(client.CoreV1().RESTClient(), "pods", metav1.NamespaceAll,
		fields.OneTermEqualSelector("spec.nodeName", NodeName))
	store, informer := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: lw,
		ObjectType:    &corev1.Pod{},
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    n.enqueue,
			UpdateFunc: func(_, obj any) { n.enqueue(obj) },
		},
	})
	n.store = store
	n.done.Add(2 + simWorkers)
	go func() { defer n.done.Done(); informer.RunWithContext(ctx) }()
	go func() { defer n.done.Done(); n.heartbeat(ctx) }()
	for range simWorkers {
		go func() {
			defer n.done.Done()
			for n.work(ctx) {
			}
		}()
	}
	go func() { <-ctx.Done(); n.queue.ShutDown() }()
	return n, nil
}

// stop ends the simulation (the Node object stays; the cluster is stopping).
func (n *simNode) stop() {
	n.cancel()
	n.done.Wait()
}

func (n *simNode) logf(format string, args ...any) {
	n.logMu.Lock()
	defer n.logMu.Unlock()
	fmt.Fprintf(n.log, time.Now().Format("15:04:05.000")+" "+format+"\n", args...)
}

// register creates the Node with a Ready status and its lease.
func (n *simNode) register(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	res := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("64"), corev1.ResourceMemory: resource.MustParse("256Gi"), corev1.ResourcePods: resource.MustParse("1000"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        NodeName,
			Annotations: map[string]string{"node.alpha.kubernetes.io/ttl": "0"},
			Labels:      map[string]string{"kubernetes.io/hostname": NodeName, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "type": "simulated"},
		},
	}
	created, err := n.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("register simulated node: %w", err)
	}
	created.Status = corev1.NodeStatus{
		Allocatable: res, Capacity: res,
		Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: simNodeIP}, {Type: corev1.NodeHostName, Address: NodeName}},
		Phase:      corev1.NodeRunning,
		NodeInfo:   corev1.NodeSystemInfo{OperatingSystem: "linux", Architecture: "amd64", KubeletVersion: "simulated"},
		Conditions: simNodeConditions(time.Now()),
	}
	if _, err := n.client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("simulated node status: %w", err)
	}
	return n.renewLease(ctx)
}

func simNodeConditions(now time.Time) []corev1.NodeCondition {
	t := metav1.NewTime(now)
	cond := func(typ corev1.NodeConditionType, status corev1.ConditionStatus, reason string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: typ, Status: status, Reason: reason, LastHeartbeatTime: t, LastTransitionTime: t}
	}
	return []corev1.NodeCondition{
		cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady"),
		cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory"),
		cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure"),
		cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID"),
		cond(corev1.NodeNetworkUnavailable, corev1.ConditionFalse, "RouteCreated"),
	}
}

// renewLease creates or renews the node's lease, as a kubelet does every few seconds.
func (n *simNode) renewLease(ctx context.Context) error {
	leases := n.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	lease, err := leases.Get(ctx, NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		holder, seconds := NodeName, int32(simLeaseSeconds)
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: NodeName},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &seconds, RenewTime: &now},
		}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	lease.Spec.RenewTime = &now
	_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	return err
}

// heartbeat renews the lease every 2 seconds (a runtime's health check waits for a renewal
// after a restart) and the Ready condition every 30, well inside the node lifecycle
// controller's grace period.
func (n *simNode) heartbeat(ctx context.Context) {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for i := 1; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := n.renewLease(rctx); err != nil && ctx.Err() == nil {
			n.logf("renew lease: %v", err)
		}
		if i%15 == 0 {
			if node, err := n.client.CoreV1().Nodes().Get(rctx, NodeName, metav1.GetOptions{}); err == nil {
				node.Status.Conditions = simNodeConditions(time.Now())
				if _, err := n.client.CoreV1().Nodes().UpdateStatus(rctx, node, metav1.UpdateOptions{}); err != nil && ctx.Err() == nil {
					n.logf("node status: %v", err)
				}
			}
		}
		cancel()
	}
}

func (n *simNode) enqueue(obj any) {
	if p, ok := obj.(*corev1.Pod); ok {
		n.queue.Add(types.NamespacedName{Namespace: p.Namespace, Name: p.Name})
	}
}

func (n *simNode) work(ctx context.Context) bool {
	key, shutdown := n.queue.Get()
	if shutdown {
		return false
	}
	defer n.queue.Done(key)
	obj, exists, err := n.store.GetByKey(key.Namespace + "/" + key.Name)
	if err != nil || !exists {
		n.queue.Forget(key)
		return true
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := n.play(rctx, obj.(*corev1.Pod).DeepCopy()); err != nil && ctx.Err() == nil {
		if !apierrors.IsNotFound(err) {
			n.logf("pod %s: %v (retrying)", key, err)
			n.queue.AddRateLimited(key)
			return true
		}
	}
	n.queue.Forget(key)
	return true
}

// play moves one pod to its next stage, if it has one.
func (n *simNode) play(ctx context.Context, pod *corev1.Pod) error {
	pods := n.client.CoreV1().Pods(pod.Namespace)
	switch {
	case pod.DeletionTimestamp != nil:
		if len(pod.Finalizers) > 0 {
			patch := []byte(`{"metadata":{"finalizers":null}}`)
			if _, err := pods.Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
				return err
			}
		}
		zero := int64(0)
		err := pods.Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: metav1.NewUIDPreconditions(string(pod.UID))})
		if err == nil {
			n.logf("pod %s/%s deleted", pod.Namespace, pod.Name)
		}
		if apierrors.IsConflict(err) {
			return nil // a new pod of the same name: its own events bring it here
		}
		return err
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		return nil
	case usesImage(pod, FailingImage):
		if waitingReason(pod) == "ErrImagePull" {
			return nil
		}
		return n.failPull(ctx, pod)
	case pod.Status.PodIP == "":
		return n.run(ctx, pod)
	case pod.Status.Phase == corev1.PodRunning && ownedBy(pod, "Job"):
		return n.complete(ctx, pod)
	}
	return nil
}

func usesImage(pod *corev1.Pod, image string) bool {
	for _, c := range pod.Spec.Containers {
		if c.Image == image {
			return true
		}
	}
	return false
}

func waitingReason(pod *corev1.Pod) string {
	for _, st := range pod.Status.ContainerStatuses {
		if st.State.Waiting != nil {
			return st.State.Waiting.Reason
		}
	}
	return ""
}

func ownedBy(pod *corev1.Pod, kind string) bool {
	for _, ref := range pod.OwnerReferences {
		if ref.Kind == kind {
			return true
		}
	}
	return false
}

// setCondition sets (or adds) one pod condition.
func setCondition(pod *corev1.Pod, typ corev1.PodConditionType, status corev1.ConditionStatus, reason string, now metav1.Time) {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == typ {
			if pod.Status.Conditions[i].Status != status {
				pod.Status.Conditions[i].LastTransitionTime = now
			}
			pod.Status.Conditions[i].Status, pod.Status.Conditions[i].Reason = status, reason
			return
		}
	}
	pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{Type: typ, Status: status, Reason: reason, LastTransitionTime: now})
}

// failPull: the pod waits in ErrImagePull, with the Warning event a kubelet records.
func (n *simNode) failPull(ctx context.Context, pod *corev1.Pod) error {
	now := metav1.Now()
	setCondition(pod, corev1.PodInitialized, corev1.ConditionTrue, "", now)
	setCondition(pod, corev1.PodReady, corev1.ConditionFalse, "ContainersNotReady", now)
	setCondition(pod, corev1.ContainersReady, corev1.ConditionFalse, "ContainersNotReady", now)
	pod.Status.Phase, pod.Status.HostIP, pod.Status.StartTime = corev1.PodPending, simNodeIP, &now
	pod.Status.HostIPs = []corev1.HostIP{{IP: simNodeIP}}
	pod.Status.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: "failed to pull image " + c.Image + ": not found"}},
		})
	}
	if _, err := n.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		return err
	}
	_, err := n.client.CoreV1().Events(pod.Namespace).Create(ctx, &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: pod.Name + "."},
		InvolvedObject: corev1.ObjectReference{
			Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID, ResourceVersion: pod.ResourceVersion,
		},
		Type: corev1.EventTypeWarning, Reason: "Failed", Count: 1,
		Message:        fmt.Sprintf("Failed to pull image %q: not found", FailingImage),
		Source:         corev1.EventSource{Component: "kubelet", Host: NodeName},
		FirstTimestamp: now, LastTimestamp: now,
	}, metav1.CreateOptions{})
	if err == nil {
		n.logf("pod %s/%s cannot pull %s", pod.Namespace, pod.Name, FailingImage)
	}
	return err
}

// run: the pod is Running and Ready, with an address of its own.
func (n *simNode) run(ctx context.Context, pod *corev1.Pod) error {
	now := metav1.Now()
	ip, err := n.podIP()
	if err != nil {
		return err
	}
	if pod.Spec.HostNetwork {
		ip = simNodeIP
	}
	for _, typ := range []corev1.PodConditionType{corev1.PodInitialized, corev1.PodReady, corev1.ContainersReady} {
		setCondition(pod, typ, corev1.ConditionTrue, "", now)
	}
	pod.Status.Phase, pod.Status.HostIP, pod.Status.PodIP, pod.Status.StartTime = corev1.PodRunning, simNodeIP, ip, &now
	pod.Status.HostIPs, pod.Status.PodIPs = []corev1.HostIP{{IP: simNodeIP}}, []corev1.PodIP{{IP: ip}}
	pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses = nil, nil
	started := true
	for _, c := range pod.Spec.InitContainers {
		pod.Status.InitContainerStatuses = append(pod.Status.InitContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, Started: &started, Ready: true,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed", StartedAt: now, FinishedAt: now}},
		})
	}
	for _, c := range pod.Spec.Containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, Started: &started, Ready: true,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	_, err = n.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	return err
}

// complete: a Job's running pod finishes with exit code 0.
func (n *simNode) complete(ctx context.Context, pod *corev1.Pod) error {
	now := metav1.Now()
	setCondition(pod, corev1.PodReady, corev1.ConditionFalse, "PodCompleted", now)
	setCondition(pod, corev1.ContainersReady, corev1.ConditionFalse, "PodCompleted", now)
	pod.Status.Phase = corev1.PodSucceeded
	started := false
	for i := range pod.Status.ContainerStatuses {
		st := &pod.Status.ContainerStatuses[i]
		st.Ready, st.Started = false, &started
		st.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed", StartedAt: now, FinishedAt: now}}
	}
	_, err := n.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	return err
}

// podIP hands out the next address of 10.0.0.0/16 (the node has 10.0.0.1).
func (n *simNode) podIP() (string, error) {
	i := n.nextIP.Add(1)
	if i >= 1<<16-1 {
		return "", errors.New("the simulated node ran out of pod addresses (10.0.0.0/16)")
	}
	base := netip.MustParseAddr("10.0.0.0").As4()
	base[2], base[3] = byte(i>>8), byte(i)
	return netip.AddrFrom4(base).String(), nil
}
