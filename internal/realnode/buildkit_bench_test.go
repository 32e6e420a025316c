//go:build linux

package realnode_test

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/NationTech/harmony-agent/internal/dockertest"
)

// TestBenchEditToRunning is scripts/bench buildkit (skipped unless HARMONY_BENCH=buildkit): the
// time from an edit of one source file of the two-image project to its pod running the new
// image (harmony launch, a whole process, returns once the rollout is ready), built by
// buildkitd straight into the real node's containerd against Docker build + save + k3s ctr
// import, on the same fixture, in the same run, RUNS times each (median reported).
func TestBenchEditToRunning(t *testing.T) {
	if os.Getenv("HARMONY_BENCH") != "buildkit" {
		t.Skip("a benchmark: scripts/bench buildkit runs it")
	}
	dockertest.Need(t)
	runs := 3
	if n, err := fmt.Sscan(os.Getenv("RUNS"), &runs); n != 1 || err != nil || runs < 1 {
		runs = 3
	}
	m := newMachine(t)
	addr := startBuildkitd(t, m.c)
	medians := map[string]time.Duration{}
	for _, b := range []struct {
		name string
		env  []string
	}{
		{"buildkitd", []string{"BUILDKIT_HOST=" + addr, "DOCKER_HOST=unix:///nonexistent/docker.sock"}},
		{"docker", []string{"BUILDKIT_HOST="}},
	} {
		mb := *m
		mb.env = append(slices.Clone(m.env), b.env...)
		project := mb.twoImageProject("bench-" + b.name)
		writeFiles(t, project, map[string]string{
			"web/Dockerfile": "FROM scratch\nCOPY server /server\nCOPY page.txt /page.txt\nENTRYPOINT [\"/server\", \"--serve\", \":8080\"]\n",
			"web/page.txt":   "edit 0",
		})
		if out, code := mb.run(project, mb.bin, "launch"); code != 0 {
			t.Fatalf("%s: first launch (exit %d):\n%s", b.name, code, out)
		}
		var times []time.Duration
		for i := 1; i <= runs; i++ {
			writeFiles(t, project, map[string]string{"web/page.txt": fmt.Sprintf("edit %d", i)})
			start := time.Now()
			out, code := mb.run(project, mb.bin, "launch")
			d := time.Since(start)
			if code != 0 || !strings.Contains(out, "building bench-"+b.name+"-web ") || strings.Contains(out, "building bench-"+b.name+"-api ") {
				t.Fatalf("%s: launch after edit %d (exit %d) did not rebuild web alone:\n%s", b.name, i, code, out)
			}
			times = append(times, d)
		}
		slices.Sort(times)
		medians[b.name] = times[len(times)/2]
		t.Logf("%s: edit → pod running the new image: %v (median of %d: %v)", b.name, medians[b.name].Round(time.Millisecond), runs, times)
	}
	fmt.Printf("edit one source file → pod running the new image (median of %d): BuildKit on containerd %.2fs, Docker build + save + import %.2fs: %.2fx (goal ≤ 0.5x)\n",
		runs, medians["buildkitd"].Seconds(), medians["docker"].Seconds(), medians["buildkitd"].Seconds()/medians["docker"].Seconds())
}
