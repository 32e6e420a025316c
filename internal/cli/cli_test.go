package cli_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/NationTech/harmony-agent/internal/cli"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"harmony": func() { os.Exit(cli.Main()) },
	})
}

// TestScripts runs testdata/script/*.txtar: each reads like a user's terminal session.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("HARMONY_HOME", env.WorkDir+"/home")
			env.Setenv("HARMONY_ROOT", env.WorkDir+"/root") // root's data directory is under it, never the machine's
			env.Setenv("NO_COLOR", "1")
			return nil
		},
		Condition: func(cond string) (bool, error) {
			if cond == "root" {
				return os.Geteuid() == 0, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
	})
}
