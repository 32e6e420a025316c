package launch

import (
	"context"
	"io"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// logs -f finds new pods by listing the namespace once a second: never in a tight loop (the
// hostile review found the watch it used before asking again and again when a server ended it
// at once), never not at all.
func TestLogsFollowListsOnceASecond(t *testing.T) {
	p := &Project{Namespace: "ns", InventoryID: "id"}
	inv := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: p.InventoryName(),
		Labels: map[string]string{InventoryLabel: "id"}}, Data: map[string]string{"ns_web__Pod": ""}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: "u1"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}}
	client := fake.NewSimpleClientset(inv, pod)
	var lists atomic.Int64
	client.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		lists.Add(1)
		return false, nil, nil
	})
	e := &Engine{client: &clients{core: client.CoreV1(), discovery: client.Discovery()}}
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	if err := e.Logs(ctx, p, LogOptions{Follow: true}, io.Discard); err != nil {
		t.Fatal(err)
	}
	// The first list, then one a second: 3 in 2.5 s.
	if n := lists.Load(); n < 2 || n > 4 {
		t.Fatalf("%d lists of the pods in 2.5 s, want one a second", n)
	}
}
