package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/NationTech/harmony-agent/internal/hint"
	"github.com/NationTech/harmony-agent/manifests"
)

// Input checks that run before a command does anything: a mistake in a flag is a usage error
// (exit 2) that says what a valid value looks like.

// checkNamespace checks a -n/--namespace value.
func checkNamespace(ns string) error {
	if ns == "" || len(validation.IsDNS1123Label(ns)) == 0 {
		return nil
	}
	return &usageError{fmt.Errorf("-n %q: a namespace is lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters (e.g. my-app)", ns)}
}

// checkTimeout checks a --timeout value that was given.
func checkTimeout(d time.Duration) error {
	if d <= 0 {
		return &usageError{fmt.Errorf("--timeout must be positive, got %s (e.g. --timeout 5m)", d)}
	}
	return nil
}

// checkK3sVersion completes a --version/--to value the way people type it ("1.36.3",
// "v1.36.3") to the pinned tag (v1.36.3+k3s1). strict refuses a version this manifest does not
// pin (bootstrap installs from it); upgrade refreshes the manifest first, so it only completes.
func checkK3sVersion(flag string, v *string, strict bool) error {
	if *v == "" {
		return nil
	}
	tag := *v
	if tag[0] >= '0' && tag[0] <= '9' {
		tag = "v" + tag
	}
	m, err := currentManifest()
	if err != nil {
		*v = tag // the install says what is wrong with the manifest
		return nil
	}
	if !strings.Contains(tag, "+") {
		for _, pinned := range m.Versions() { // newest first: the newest k3s revision
			if strings.HasPrefix(pinned, tag+"+") {
				tag = pinned
				break
			}
		}
	}
	if !strict {
		*v = tag
		return nil
	}
	if _, err := manifests.ParseVersion(tag); err != nil && !strings.Contains(tag, "+") && strings.HasPrefix(tag, "v") {
		return &usageError{hint.With(fmt.Errorf("--%s %s: k3s %s is not pinned (pinned: %s)", flag, *v, tag, strings.Join(m.Versions(), ", ")),
			"list the pinned versions: harmony runtime versions")}
	}
	if _, err := m.Release(tag); err != nil {
		return &usageError{hint.With(fmt.Errorf("--%s %s: %w", flag, *v, err), "list the pinned versions: harmony runtime versions")}
	}
	*v = tag
	return nil
}

// completionArgs makes cobra's completion command refuse a shell it does not know (exit 2)
// instead of printing its help.
func completionArgs(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Args = usageArgs(cobra.NoArgs)
			c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
		}
	}
}
