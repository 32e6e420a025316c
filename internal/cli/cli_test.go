package cli_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/NationTech/harmony-agent/bootstrap"
	"github.com/NationTech/harmony-agent/internal/cli"
	"github.com/NationTech/harmony-agent/launch"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"harmony": func() { os.Exit(cli.Main()) },
	})
}

// scriptCmds are the scripts' own commands (and, on Linux, nobody: harmony as an unprivileged
// user).
var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"hang-server":   cmdHangServer,
	"await-request": cmdAwaitRequest,
	"maxrss":        cmdMaxRSS,
	"output-json":   cmdOutputJSON,
	"bg-start":      cmdBgStart,
	"bg-wait":       cmdBgWait,
	"bg-stop":       cmdBgStop,
}

// cmdOutputJSON decodes the last command's stdout as the -o json document of launch, down and
// status (one Go type, unknown fields refused) and checks what every document promises:
// "output-json launch|down|status".
func cmdOutputJSON(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: output-json launch|down|status")
	}
	dec := json.NewDecoder(strings.NewReader(ts.ReadFile("stdout")))
	dec.DisallowUnknownFields()
	var out launch.Output
	if err := dec.Decode(&out); err != nil {
		ts.Fatalf("stdout is not the -o json document: %v", err)
	}
	if out.SchemaVersion != launch.OutputSchemaVersion || out.Command != args[0] || out.App.Namespace == "" || out.Objects == nil {
		ts.Fatalf("document: %+v", out)
	}
	actions := map[string]bool{"created": true, "configured": true, "unchanged": true, "pruned": true, "left-alone": true, "hook-run": true}
	for _, o := range out.Objects {
		if o.Kind == "" || o.APIVersion == "" || o.Name == "" {
			ts.Fatalf("an object without kind, apiVersion or name: %+v", o)
		}
		if (args[0] == "status") != (o.Action == "") || (o.Action != "" && !actions[o.Action]) {
			ts.Fatalf("%s: action %q", args[0], o.Action)
		}
	}
}

// TestScripts runs testdata/script/*.txtar: each reads like a user's terminal session.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:  "testdata/script",
		Cmds: scriptCmds,
		Setup: func(env *testscript.Env) error {
			env.Setenv("HARMONY_HOME", env.WorkDir+"/home")
			env.Setenv("HARMONY_ROOT", env.WorkDir+"/root") // root's data directory is under it, never the machine's
			env.Setenv("NO_COLOR", "1")
			// No Docker engine unless a script names one: the machine's engine may hold another
			// package's k3d node (bootstrap's end-to-end test runs at the same time), which
			// would make "auto" choose k3d in scripts that expect k3s.
			env.Setenv("DOCKER_HOST", "unix://"+env.WorkDir+"/no-docker.sock")
			env.Values[hangKey{}] = &hangServer{}
			return nil
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "root":
				return os.Geteuid() == 0, nil
			case "cgroupv1":
				// This machine mounts cgroup v1 (as CI's machines do): /sys/fs/cgroup is not cgroup2.
				return bootstrap.CgroupVersion("/") == 1, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
	})
}

type hangKey struct{}

// hangServer is a mirror that accepts connections and never answers: a download waits on it
// until it is interrupted.
type hangServer struct {
	requests chan struct{}
}

// cmdHangServer starts a hangServer and sets HANG_URL to its address.
func cmdHangServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: hang-server")
	}
	h := ts.Value(hangKey{}).(*hangServer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	h.requests = make(chan struct{}, 16)
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			go func() {
				buf := make([]byte, 4096)
				if n, _ := c.Read(buf); n > 0 {
					h.requests <- struct{}{}
				}
			}()
		}
	}()
	ts.Defer(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	ts.Setenv("HANG_URL", "http://"+ln.Addr().String())
}

// cmdAwaitRequest waits until the hangServer has received a request.
func cmdAwaitRequest(ts *testscript.TestScript, neg bool, args []string) {
	h := ts.Value(hangKey{}).(*hangServer)
	if neg || len(args) != 0 || h.requests == nil {
		ts.Fatalf("usage: await-request (after hang-server)")
	}
	select {
	case <-h.requests:
	case <-time.After(2 * time.Minute):
		ts.Fatalf("no request reached the server in 2 minutes")
	}
}
