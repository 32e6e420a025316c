package bootstrap_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/NationTech/harmony-agent/bootstrap"
)

// recorder records the commands a supervisor runs; "is-active"/"status" fail unless active.
type recorder struct {
	calls  []string
	active bool
}

func (r *recorder) Run(_ context.Context, name string, args ...string) ([]byte, error) {
	call := name + " " + strings.Join(args, " ")
	r.calls = append(r.calls, call)
	if (strings.Contains(call, "is-active") || strings.HasSuffix(call, " status")) && !r.active {
		return nil, errors.New("inactive")
	}
	return nil, nil
}

func TestInitSystemSupervisors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		marker    string // what makes the init system detectable under HARMONY_ROOT
		unit      string
		wantName  string
		wantCalls []string
	}{
		{"systemd", "run/systemd/system/", "etc/systemd/system/k3s.service", "systemd",
			[]string{"systemctl daemon-reload", "systemctl enable k3s", "systemctl restart k3s", "systemctl is-active --quiet k3s", "systemctl stop k3s"}},
		{"openrc", "sbin/openrc-run", "etc/init.d/k3s", "openrc",
			[]string{"rc-update add k3s default", "rc-service k3s restart", "rc-service k3s status", "rc-service k3s stop"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			marker := filepath.Join(root, tt.marker)
			if strings.HasSuffix(tt.marker, "/") {
				if err := os.MkdirAll(marker, 0o755); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := os.MkdirAll(filepath.Dir(marker), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(marker, nil, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			r := &recorder{}
			sup := bootstrap.DetectSupervisor(bootstrap.Paths{Root: root}, r)
			if sup.Name() != tt.wantName {
				t.Fatalf("detected %q", sup.Name())
			}
			ctx := context.Background()
			if err := sup.Install(ctx); err != nil {
				t.Fatal(err)
			}
			if err := sup.Start(ctx); err != nil {
				t.Fatal(err)
			}
			r.active = true
			if ok, _ := sup.Running(ctx); !ok {
				t.Fatal("not running")
			}
			if err := sup.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			if strings.Join(r.calls, "\n") != strings.Join(tt.wantCalls, "\n") {
				t.Fatalf("calls:\n%s\nwant:\n%s", strings.Join(r.calls, "\n"), strings.Join(tt.wantCalls, "\n"))
			}
			if _, err := os.Stat(filepath.Join(root, tt.unit)); err != nil {
				t.Fatalf("unit not written: %v", err)
			}
			if err := sup.Remove(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(root, tt.unit)); !os.IsNotExist(err) {
				t.Fatal("unit left after Remove")
			}
		})
	}
}
