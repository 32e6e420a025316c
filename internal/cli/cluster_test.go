package cli_test

import (
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/NationTech/harmony-agent/internal/testcluster"
)

// TestClusterScripts runs testdata/cluster/*.txtar against a real control plane (kube-apiserver,
// controller-manager, a simulated node): what launch, status and down print once a cluster
// answers. $ADMIN_KUBECONFIG is its admin kubeconfig; each script uses its own project (and so
// its own namespace).
func TestClusterScripts(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the test control plane; skipped under -short")
	}
	c, err := testcluster.Start()
	if err != nil {
		t.Fatalf("test control plane: %v", err)
	}
	t.Cleanup(c.Stop)
	testscript.Run(t, testscript.Params{
		Dir:  "testdata/cluster",
		Cmds: scriptCmds,
		Setup: func(env *testscript.Env) error {
			env.Setenv("HARMONY_HOME", env.WorkDir+"/home")
			env.Setenv("HARMONY_ROOT", env.WorkDir+"/root")
			env.Setenv("HARMONY_NO_UPDATE_CHECK", "1")
			env.Setenv("NO_COLOR", "1")
			env.Setenv("KUBECONFIG", env.WorkDir+"/home/.kube/config")
			env.Setenv("ADMIN_KUBECONFIG", c.Kubeconfig)
			env.Values[bgKey{}] = map[string]*bgProc{}
			return nil
		},
	})
}
