package launch

import (
	"strings"
	"testing"

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
