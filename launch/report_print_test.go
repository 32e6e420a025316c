package launch_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/NationTech/harmony-agent/launch"
)

// Hostile repository (terminal escapes): object and file names come from the repository, and a
// dry run without a cluster prints them unchecked by any server. The plan table never carries
// a terminal control sequence.
func TestPrintPlanSanitizesRepositoryNames(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	launch.PrintPlan(&out, []launch.Step{{
		Action: launch.Create,
		Ref:    "configmap/x\x1b]0;PWNED\a (namespace n\x1b[2J)",
		Origin: "k8s/\x1b[31mred\u202e.yaml:1",
		Note:   "not checked\x9b2J",
	}})
	got := out.String()
	if strings.ContainsAny(got, "\x1b\a\u009b\u202e") {
		t.Fatalf("the plan carries terminal controls: %q", got)
	}
	for _, want := range []string{"configmap/x]0;PWNED", "k8s/[31mred.yaml:1"} {
		if !strings.Contains(got, want) {
			t.Errorf("plan %q does not show %q", got, want)
		}
	}
}
