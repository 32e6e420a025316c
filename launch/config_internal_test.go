package launch

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// harmony.yaml mistakes are named with their line and what was meant; convenient shorthands
// are accepted (issue 18 item 5).
func TestNormalizeConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     Config
		err      string
	}{
		{name: "list", in: "manifests: [a.yaml, b/]\nnamespace: shop\n", want: Config{Manifests: []string{"a.yaml", "b/"}, Namespace: "shop"}},
		{name: "a string for a list", in: "manifests: deploy/app.yaml\nservices: web\n", want: Config{Manifests: []string{"deploy/app.yaml"}, Services: []string{"web"}}},
		{name: "a number for a string", in: "manifests: [a]\nnamespace: 2024\ntimeout: 5m\n", want: Config{Manifests: []string{"a"}, Namespace: "2024", Timeout: "5m"}},
		{name: "one image without a list", in: "manifests: [a]\nimages:\n  image: web\n  context: .\n", want: Config{Manifests: []string{"a"}, Images: []ImageArtifact{{Image: "web", Context: "."}}}},
		{name: "set keeps any values", in: "chart: c\nset: {replicas: 2, ingress: {host: x}}\n", want: Config{Chart: "c", Set: map[string]any{"replicas": float64(2), "ingress": map[string]any{"host": "x"}}}},
		{name: "typo", in: "# comment\nnamespace: shop\nmanifest: [a]\n", err: `harmony.yaml:3: unknown field "manifest" (did you mean "manifests"?)`},
		{name: "far from anything", in: "manifests: [a]\nzzzzzz: 1\n", err: `harmony.yaml:2: unknown field "zzzzzz"`},
		{name: "typo in an image", in: "manifests: [a]\nimages:\n- image: web\n  contxt: .\n", err: `harmony.yaml:4: unknown field "images[0].contxt" (did you mean "context"?)`},
		{name: "YAML 1.1 booleans stay strings", in: "manifests: [a]\nnamespace: y\nchart: c\nset: {n: yes, off: 1}\n",
			want: Config{Manifests: []string{"a"}, Namespace: "y", Chart: "c", Set: map[string]any{"n": true, "off": float64(1)}}},
		{name: "jsonnet", in: "jsonnet:\n  tlas: {env: dev, replicas: '2'}\n  extVars: {x: y}\n  tlaCode: {debug: 'true'}\n  libs: vendor\n",
			want: Config{Jsonnet: &JsonnetConfig{TLAs: map[string]string{"env": "dev", "replicas": "2"}, ExtVars: map[string]string{"x": "y"}, TLACode: map[string]string{"debug": "true"}, Libs: []string{"vendor"}}}},
		{name: "a number for a jsonnet argument", in: "jsonnet:\n  tlas: {replicas: 2}\n",
			err: `harmony.yaml:2: jsonnet.tlas.replicas: 2 is a number, but tlas are strings for Jsonnet: for the number write it under tlaCode (tlaCode: {replicas: "2"}); for the string, quote it ("2")`},
		{name: "a boolean for a jsonnet variable", in: "jsonnet:\n  extVars: {debug: true}\n",
			err: `harmony.yaml:2: jsonnet.extVars.debug: true is a boolean, but extVars are strings for Jsonnet: for the boolean write it under extCode (extCode: {debug: "true"}); for the string, quote it ("true")`},
		{name: "typo in jsonnet", in: "jsonnet:\n  tla: {env: dev}\n", err: `harmony.yaml:2: unknown field "jsonnet.tla" (did you mean "tlas"?)`},
		{name: "list for a jsonnet argument", in: "jsonnet: {tlas: {env: [a]}}\n", err: "harmony.yaml:1: jsonnet.tlas.env: want a string, got a list"},
		{name: "list for a string", in: "manifests: [a]\nnamespace:\n- shop\n", err: "harmony.yaml:3: namespace: want a string, got a list"},
		{name: "mapping for a list of strings", in: "manifests: {a: b}\n", err: "harmony.yaml:1: manifests: want a list, got a mapping"},
		{name: "scalar for a mapping", in: "chart: c\nset: replicas=2\n", err: `harmony.yaml:2: set: want a mapping (key: value), got "replicas=2"`},
		{name: "not a mapping", in: "- manifests\n", err: "harmony.yaml:1: want a mapping of fields, got a list"},
		{name: "twice", in: "manifests: [a]\nnamespace: a\nnamespace: b\n", err: "harmony.yaml:3: namespace is set twice (first at line 2)"},
		{name: "syntax", in: "manifests: [a\n", err: "harmony.yaml:1: did not find expected ',' or ']'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := normalizeConfig([]byte(tc.in))
			if tc.err != "" {
				if err == nil || err.Error() != tc.err || !errors.Is(err, ErrBadConfig) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got Config
			if err := yaml.UnmarshalStrict(out, &got); err != nil {
				t.Fatalf("decode %q: %v", out, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v %+v, want %+v %+v (from %q)", got, got.Jsonnet, tc.want, tc.want.Jsonnet, out)
			}
		})
	}
	if got := closest("namespce", []string{"manifests", "namespace"}); got != "namespace" {
		t.Fatalf("closest = %q", got)
	}
	if got := closest("man", []string{"manifests", "namespace"}); !strings.HasPrefix(got, "manifests") {
		t.Fatalf("closest(man) = %q", got)
	}
}
