package launch

import (
	"context"
	"io"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// A watch of pods that the server ends at once (410 Gone: the resource version is too old, as
// it is after a quiet while) does not make logs -f ask again and again without pause.
func TestLogsFollowWatchEndsAtOnce(t *testing.T) {
	p := &Project{Namespace: "ns", InventoryID: "id"}
	inv := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: p.InventoryName(),
		Labels: map[string]string{InventoryLabel: "id"}}, Data: map[string]string{"ns_web__Pod": ""}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: "u1"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}}
	client := fake.NewSimpleClientset(inv, pod)
	var watches atomic.Int64
	client.PrependWatchReactor("pods", func(k8stesting.Action) (bool, watch.Interface, error) {
		watches.Add(1)
		w := watch.NewFakeWithChanSize(1, false)
		w.Error(&metav1.Status{Status: metav1.StatusFailure, Code: 410, Reason: metav1.StatusReasonExpired,
			Message: "too old resource version"})
		w.Stop()
		return true, w, nil
	})
	e := &Engine{client: client}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := e.Logs(ctx, p, LogOptions{Follow: true}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if n := watches.Load(); n > 10 {
		t.Fatalf("%d watches in 2 s: logs -f spins when the server ends its watch", n)
	}
}
