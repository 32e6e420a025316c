package launch

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestPodReasonsSayALostBuiltImageIsLoadedAgain: a pod whose image harmony built cannot pull it
// (the kubelet collected it): the reasons say so and what to do; any other image failing its
// pull gets only the runtime's own reason.
func TestPodReasonsSayALostBuiltImageIsLoadedAgain(t *testing.T) {
	pod := func(image, reason string) corev1.Pod {
		return corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "web-1"},
			Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
				Name: "web", Image: image,
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "failed to pull"}},
			}}},
		}
	}
	built := ImageHost + "/web:harmony-0123456789abcdef"
	tests := []struct {
		image, reason string
		lost          bool
	}{
		{built, "ErrImagePull", true},
		{built, "ImagePullBackOff", true},
		{built, "CrashLoopBackOff", false},
		{"registry.invalid/web:v1", "ErrImagePull", false},
		{"web:harmony-0123456789abcdef", "ImagePullBackOff", false},
	}
	for _, tt := range tests {
		reasons := strings.Join(podReasons(pod(tt.image, tt.reason)), "\n")
		if !strings.Contains(reasons, tt.reason) {
			t.Errorf("%s, %s: the runtime's reason is missing:\n%s", tt.image, tt.reason, reasons)
		}
		if got := strings.Contains(reasons, "launch again and harmony loads it again"); got != tt.lost {
			t.Errorf("%s, %s: says the image is lost: %v, want %v:\n%s", tt.image, tt.reason, got, tt.lost, reasons)
		}
	}
}

// TestPodsSettled: a container with no probe is ready only once it has run for podSettle (the
// kubelet calls it ready the moment it starts, even one that exits at once); a waiting or
// terminated container is never ready; a probed one is ready when Kubernetes says so; pods being
// deleted (a rollout's old ones) do not count.
func TestPodsSettled(t *testing.T) {
	now := time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	running := func(ago time.Duration) corev1.ContainerState {
		return corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(now.Add(-ago))}}
	}
	pod := func(probe bool, state corev1.ContainerState, deleting bool) corev1.Pod {
		p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1"}}
		c := corev1.Container{Name: "web"}
		if probe {
			c.ReadinessProbe = &corev1.Probe{}
		}
		p.Spec.Containers = []corev1.Container{c}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "web", State: state}}
		if deleting {
			ts := metav1.NewTime(now)
			p.DeletionTimestamp = &ts
		}
		return p
	}
	for _, tc := range []struct {
		name string
		pod  corev1.Pod
		want bool
		msg  string
	}{
		{"no probe, just started", pod(false, running(time.Second), false), false, "started less than 3s ago; making sure it keeps running"},
		{"no probe, ran long enough", pod(false, running(podSettle), false), true, ""},
		{"restarted after a crash, just started again", func() corev1.Pod {
			p := pod(false, running(time.Second), false)
			p.Status.ContainerStatuses[0].RestartCount = 3
			p.Status.ContainerStatuses[0].LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 1}}
			return p
		}(), false, "CrashLoopBackOff (restarted 3 times; last exit: Error, exit code 1)"},
		{"probe passed, just started", pod(true, running(100*time.Millisecond), false), true, ""},
		{"crash loop", pod(false, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}, false), false, "container web: CrashLoopBackOff"},
		{"exited", pod(false, corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 1}}, false), false, "terminated (Error, exit code 1)"},
		{"being deleted", pod(false, corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 1}}, true), true, ""},
		{"finished (a hook's Job pod with the same labels)", func() corev1.Pod {
			p := pod(false, corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed"}}, false)
			p.Status.Phase = corev1.PodSucceeded
			return p
		}(), true, ""},
		{"evicted", func() corev1.Pod {
			p := pod(false, corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 137}}, false)
			p.Status.Phase = corev1.PodFailed
			return p
		}(), true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, msg := podsSettled([]corev1.Pod{tc.pod}, now)
			if ok != tc.want || !strings.Contains(msg, tc.msg) || (tc.want && msg != "") {
				t.Errorf("podsSettled = %v, %q; want %v, %q", ok, msg, tc.want, tc.msg)
			}
		})
	}
}

// TestControlledBy: only the workload's own pods count (a Deployment's through its ReplicaSets),
// never another's that its selector happens to match.
func TestControlledBy(t *testing.T) {
	yes := true
	pod := func(kind, name, uid string) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: map[string]string{"pod-template-hash": "5d8f7"},
			OwnerReferences: []metav1.OwnerReference{{Kind: kind, Name: name, UID: types.UID(uid), Controller: &yes}}}}
	}
	deploy := &unstructured.Unstructured{Object: map[string]any{"kind": "Deployment", "metadata": map[string]any{"name": "web", "uid": "d1"}}}
	sts := &unstructured.Unstructured{Object: map[string]any{"kind": "StatefulSet", "metadata": map[string]any{"name": "db", "uid": "s1"}}}
	for _, tc := range []struct {
		pod  corev1.Pod
		w    *unstructured.Unstructured
		want bool
	}{
		{pod("ReplicaSet", "web-5d8f7", "r1"), deploy, true},
		{pod("ReplicaSet", "webapp-5d8f7", "r2"), deploy, false},
		{pod("ReplicaSet", "web-api-5d8f7", "r3"), deploy, false},
		{pod("Job", "web-migrate", "j1"), deploy, false},
		{corev1.Pod{}, deploy, false},
		{pod("StatefulSet", "db", "s1"), sts, true},
		{pod("StatefulSet", "db", "other"), sts, false},
	} {
		if got := controlledBy(tc.pod, tc.w); got != tc.want {
			t.Errorf("controlledBy(%v, %s) = %v, want %v", tc.pod.OwnerReferences, tc.w.GetName(), got, tc.want)
		}
	}
}
