package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/client"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// engineAPI is an httptest server speaking the part of Docker's Engine API a diagnosis uses:
// /_ping and /version, answering as the given engine.
func engineAPI(t *testing.T, version string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		w.Header().Set("Ostype", "linux")
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			fmt.Fprint(w, "OK")
		case strings.HasSuffix(r.URL.Path, "/version"):
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, version)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return "tcp://" + srv.Listener.Addr().String()
}

func apiClient(t *testing.T, host string) client.APIClient {
	t.Helper()
	c, err := client.NewClientWithOpts(client.WithHost(host), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func hints(err error) string { return strings.Join(hint.Of(err), "\n") }

func TestDiagnoseDockerEngineAPI(t *testing.T) {
	t.Parallel()
	const (
		current = `{"Version":"28.5.2","ApiVersion":"1.51","MinAPIVersion":"1.24","Os":"linux","Arch":"amd64"}`
		old     = `{"Version":"19.03.15","ApiVersion":"1.40","MinAPIVersion":"1.12","Os":"linux","Arch":"amd64"}`
		podman  = `{"Platform":{"Name":"linux/amd64/debian-12"},"Components":[{"Name":"Podman Engine","Version":"4.3.1","Details":{}}],"Version":"4.3.1","ApiVersion":"1.41","MinAPIVersion":"1.24","Os":"linux","Arch":"amd64"}`
	)
	for _, tc := range []struct {
		name, version, goos string
		want                error
		hint                string
	}{
		{"current engine", current, "linux", nil, ""},
		{"too old on linux", old, "linux", ErrDockerTooOld, "upgrade Docker Engine"},
		{"too old on macOS", old, "darwin", ErrDockerTooOld, "upgrade Docker Desktop"},
		{"podman on linux", podman, "linux", ErrDockerPodman, "harmony bootstrap --runtime k3s"},
		{"podman on windows", podman, "windows", ErrDockerPodman, "Docker Desktop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			host := engineAPI(t, tc.version)
			p := dockerProbe{goos: tc.goos, installed: func(string) bool { return true }}
			e, err := p.diagnose(context.Background(), host, "default", apiClient(t, host))
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if tc.want == nil {
				if e.Version != "28.5.2" || e.APIVersion != "1.51" {
					t.Fatalf("engine %+v", e)
				}
				return
			}
			if !strings.Contains(hints(err), tc.hint) {
				t.Fatalf("hints lack %q:\n%s", tc.hint, hints(err))
			}
		})
	}
}

func TestDiagnoseDockerUnreachable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// A socket file nothing listens on: what a crashed daemon leaves.
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcpHost := "tcp://" + closed.Addr().String()
	closed.Close()
	missing := "unix://" + filepath.Join(dir, "docker.sock")
	for _, tc := range []struct {
		name, host, goos string
		installed        bool
		want             error
		hint             string
		dockerHost       string // DOCKER_HOST's value
	}{
		{"not installed on linux", missing, "linux", false, ErrDockerNotInstalled, "docker.io or docker-ce", ""},
		{"not installed on macOS", missing, "darwin", false, ErrDockerNotInstalled, "install Docker Desktop", ""},
		{"not running on linux", missing, "linux", true, ErrDockerNotRunning, "sudo systemctl start docker", ""},
		{"not running on macOS", missing, "darwin", true, ErrDockerNotRunning, "start Docker Desktop", ""},
		{"stale socket", "unix://" + stale, "linux", true, ErrDockerNotRunning, "sudo systemctl start docker", ""},
		{"DOCKER_HOST nobody answers", tcpHost, "linux", true, ErrDockerNotRunning, "unset DOCKER_HOST", tcpHost},
		// Issue 29 item 5: a DOCKER_HOST socket that is not there is named as such, not as
		// "install Docker" nor "start it".
		{"DOCKER_HOST names no socket", missing, "linux", false, ErrDockerNotRunning, "fix DOCKER_HOST", missing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := dockerProbe{goos: tc.goos, installed: func(string) bool { return tc.installed }, dockerHost: tc.dockerHost}
			_, err := p.diagnose(context.Background(), tc.host, "default", apiClient(t, tc.host))
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if !strings.Contains(hints(err), tc.hint) {
				t.Fatalf("hints lack %q:\n%s", tc.hint, hints(err))
			}
		})
	}
}
