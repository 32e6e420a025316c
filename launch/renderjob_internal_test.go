package launch

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// A render child reaches the cluster through the launch: a Unix socket in a private folder,
// read-only, the credentials added by the launch (the child never has them), and gone after.
func TestRenderChildReadsTheClusterThroughTheLaunch(t *testing.T) {
	t.Parallel()
	var writes int
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			http.Error(w, "no credentials", http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodGet {
			writes++
		}
		if strings.HasSuffix(r.URL.Path, "/namespaces/default") {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"default"}}`)
			return
		}
		http.NotFound(w, r)
	}))
	defer api.Close()
	cfg := &rest.Config{Host: api.URL, BearerToken: "s3cret", TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	cc, stop, err := serveCluster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(cc.Socket)
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("the socket's folder: %v %v (want 0700)", st.Mode(), err)
	}
	child := cc.rest()
	if child.BearerToken != "" || child.Host != "http://harmony-render" {
		t.Fatalf("the child's config carries %+v", child)
	}
	c, err := kubernetes.NewForConfig(child)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if ns, err := c.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil || ns.Name != "default" {
		t.Fatalf("a read through the launch: %v %v", ns, err)
	}
	if err := c.CoreV1().Namespaces().Delete(ctx, "default", metav1.DeleteOptions{}); err == nil || writes != 0 {
		t.Fatalf("a write went through (err %v, %d writes reached the cluster)", err, writes)
	}
	stop()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the socket's folder is left: %v", err)
	}
}

// The child's stderr: a chart's warnings reach the user (sanitised); the runtime's crash report
// does not, but says whether it was the memory limit, however much was written before it.
func TestRenderChildStderr(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	c := &childStderr{out: &out}
	_, _ = io.WriteString(c, "WARN a warning \x1b[31mred\x1b[0m\n")
	_, _ = io.WriteString(c, strings.Repeat("w", 17<<10)+"\n")
	_, _ = io.WriteString(c, "runtime: out of memory: cannot allocate 4294967296-byte block (1 in use)\nfatal error: out of memory\n\ngoroutine 1 [running]:\nmain.main()\n")
	c.flush()
	if !c.outOfMemory {
		t.Fatal("the memory limit was not recognised after 17 KiB of warnings")
	}
	if strings.Contains(out.String(), "\x1b") || !strings.Contains(out.String(), "WARN a warning") {
		t.Fatalf("warnings passed on as %q", out.String())
	}
	if strings.Contains(out.String(), "goroutine") || strings.Contains(c.crash(), "goroutine") {
		t.Fatalf("the stacks reached the user: %q / %q", out.String(), c.crash())
	}
	d := &childStderr{}
	_, _ = io.WriteString(d, "WARN condition: \"out of memory\"\nruntime: goroutine stack exceeds 1000000000-byte limit\nfatal error: stack overflow\n")
	d.flush()
	if d.outOfMemory || !strings.Contains(d.crash(), "stack overflow") {
		t.Fatalf("a stack overflow read as out of memory %v, or not said: %q", d.outOfMemory, d.crash())
	}
}

// kustomize's warnings come back with the objects, from the render job and across the wire
// from a render child, to be printed by the launch (after its first line), not by kustomize.
func TestRenderJobReturnsKustomizeWarnings(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"kustomization.yaml": "resources: [cm.yaml]\ncommonLabels: {app: x}\n",
		"cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	j := RenderJob{Dir: dir, Selection: Selection{Dir: dir}}
	r, err := j.Run(t.Context(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Objects) != 1 || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "kustomization.yaml") || !strings.Contains(r.Warnings[0], "commonLabels") {
		t.Fatalf("rendered %d objects with warnings %q, want 1 and one warning about commonLabels", len(r.Objects), r.Warnings)
	}
	w, err := toWire(r)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	var back wireResult
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	got, err := fromWire(&back)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Warnings) != 1 || got.Warnings[0] != r.Warnings[0] {
		t.Fatalf("the warnings across the wire: %q, want %q", got.Warnings, r.Warnings)
	}
}
