package bootstrap

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

// TestK3dRuntimeCallsAtOnceDoNotRace: launch asks k3d for a cluster's images while other
// goroutines (a second launch's plan, tests side by side) call k3d too. Every call of k3d's own
// Docker runtime builds a Docker CLI that writes the CLI's package globals, so under -race this
// fails with k3drt.Docker itself and passes with k3dRuntime. The real engine answers the calls.
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
