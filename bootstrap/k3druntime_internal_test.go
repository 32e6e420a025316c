package bootstrap

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/client"
	k3drt "github.com/k3d-io/k3d/v5/pkg/runtimes"
)

// TestK3dRuntimeCallsAtOnceDoNotRace: launch asks k3d for a cluster's images while other
// goroutines (a second launch's plan, tests side by side) call k3d too. Every call of k3d's own
// Docker runtime builds a Docker CLI that writes the CLI's package globals, so under -race this
// fails with k3drt.Docker itself and passes with k3dRuntime (go test -race ./bootstrap). The real
// engine answers the calls.
func TestK3dRuntimeCallsAtOnceDoNotRace(t *testing.T) {
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = c.Ping(ctx)
		cancel()
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no Docker engine (scripts/test starts one): %v", err)
		}
		t.Skipf("no Docker engine: %v (scripts/test starts one)", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 8 {
		wg.Go(func() {
			for range 2 {
				_, err := k3dRuntime.GetNodesByLabel(context.Background(), map[string]string{"harmony.test/none": t.Name()})
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("list k3d nodes: %v", err)
		}
	}
}

// TestSerialRuntimeHoldsTheLockInEveryMethod: the race detector is not part of scripts/test (its
// instrumented build of every dependency would cost the cold run minutes), so the serialization
// the test above relies on is checked here on the source: every method of serialRuntime takes
// k3dLib before calling k3d and releases it when it returns, and harmony's code reaches k3d's
// Docker runtime only through k3dRuntime.
func TestSerialRuntimeHoldsTheLockInEveryMethod(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "k3druntime.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	methods := 0
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Recv == nil || len(fn.Recv.List) != 1 {
			continue
		}
		if id, ok := fn.Recv.List[0].Type.(*ast.Ident); !ok || id.Name != "serialRuntime" {
			continue
		}
		methods++
		body := fn.Body.List
		if len(body) < 3 || !isCall(body[0], "k3dLib", "Lock", false) || !isCall(body[1], "k3dLib", "Unlock", true) {
			t.Errorf("serialRuntime.%s (%s) does not begin with k3dLib.Lock(); defer k3dLib.Unlock()", fn.Name.Name, fset.Position(fn.Pos()))
		}
	}
	// Every method of k3d's runtime interface is one of serialRuntime's (the compiler checks
	// that serialRuntime implements it; this checks none is promoted from an embedded field).
	want := reflect.TypeFor[k3drt.Runtime]().NumMethod()
	if methods != want {
		t.Errorf("serialRuntime declares %d methods, k3d's Runtime has %d: each must hold k3dLib", methods, want)
	}
	// No other file of the package calls k3d's Docker runtime directly.
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || name == "k3druntime.go" {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(src), "k3drt.Docker") || strings.Contains(string(src), "runtimes.Docker") || strings.Contains(string(src), "SelectedRuntime") {
			t.Errorf("%s reaches k3d's Docker runtime without k3dRuntime (its calls race)", name)
		}
	}
}

// isCall reports whether stmt is (defer, when deferred) recv.method().
func isCall(stmt ast.Stmt, recv, method string, deferred bool) bool {
	var call *ast.CallExpr
	switch s := stmt.(type) {
	case *ast.ExprStmt:
		if deferred {
			return false
		}
		call, _ = s.X.(*ast.CallExpr)
	case *ast.DeferStmt:
		if !deferred {
			return false
		}
		call = s.Call
	}
	if call == nil || len(call.Args) != 0 {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != method {
		return false
	}
	id, ok := sel.X.(*ast.Ident)
	return ok && id.Name == recv
}
