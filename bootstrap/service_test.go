package bootstrap_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/NationTech/harmony-agent/bootstrap"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestUnitsMatchGoldenFiles(t *testing.T) {
	t.Parallel()
	for name, got := range map[string]string{
		"k3s.service.golden": bootstrap.SystemdUnit(),
		"k3s.openrc.golden":  bootstrap.OpenRCScript(),
		// On a cgroup v1 host: the kubelet is told to run anyway.
		"k3s-cgroupv1.service.golden": bootstrap.SystemdUnit(bootstrap.CgroupV1KubeletArg),
		"k3s-cgroupv1.openrc.golden":  bootstrap.OpenRCScript(bootstrap.CgroupV1KubeletArg),
		// The agent's schedule, for a harmony in /usr/local/bin.
		"harmony-agent.service.golden":      bootstrap.AgentSystemdService("/usr/local/bin/harmony"),
		"harmony-agent.timer.golden":        bootstrap.AgentSystemdTimer(""),
		"harmony-agent-window.timer.golden": bootstrap.AgentSystemdTimer("22:30-01:00"),
		"harmony-agent.cron.golden":         bootstrap.AgentCron("/usr/local/bin/harmony", 17, 3),
		"harmony-agent.periodic.golden":     bootstrap.AgentPeriodic("/usr/local/bin/harmony"),
	} {
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(want) != got {
			t.Errorf("%s differs from the rendered unit (run go test -update to accept):\n%s", name, got)
		}
	}
}
