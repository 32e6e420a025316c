package launch

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/build"
	"google.golang.org/protobuf/encoding/protowire"
)

// The test's own encoding of BuildKit's StatusResponse, field numbers from BuildKit's
// api/services/control/control.proto.
func pbBytes(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func pbTime(sec int64) []byte {
	b := protowire.AppendTag(nil, 1, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(sec))
}

type testVertex struct {
	digest, name, err  string
	cached             bool
	started, completed bool
}

func (v testVertex) encode() []byte {
	b := pbBytes(nil, 1, []byte(v.digest))
	b = pbBytes(b, 2, []byte("sha256:input")) // inputs: skipped
	if v.name != "" {
		b = pbBytes(b, 3, []byte(v.name))
	}
	if v.cached {
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	if v.started {
		b = pbBytes(b, 5, pbTime(1))
	}
	if v.completed {
		b = pbBytes(b, 6, pbTime(2))
	}
	if v.err != "" {
		b = pbBytes(b, 7, []byte(v.err))
	}
	return pbBytes(b, 8, []byte{0x0a, 0x01, 'g'}) // progressGroup: skipped
}

func testLog(vertex, msg string) []byte {
	b := pbBytes(nil, 1, []byte(vertex))
	b = pbBytes(b, 2, pbTime(1))
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	b = protowire.AppendVarint(b, 2)
	return pbBytes(b, 4, []byte(msg))
}

func statusMsg(vs []testVertex, logs ...[]byte) []byte {
	var b []byte
	for _, v := range vs {
		b = pbBytes(b, 1, v.encode())
	}
	b = pbBytes(b, 2, []byte{0x0a, 0x01, 'x'}) // statuses: skipped
	for _, l := range logs {
		b = pbBytes(b, 3, l)
	}
	return pbBytes(b, 4, []byte{0x0a, 0x01, 'w'}) // warnings: skipped
}

func traceLine(t *testing.T, pb []byte) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"id": "moby.buildkit.trace", "aux": base64.StdEncoding.EncodeToString(pb)})
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

// decoded is what decodeStatus reads of b.
func decoded(b []byte) (vs []bkVertex, logs []bkLog) {
	decodeStatus(b, func(v bkVertex) { vs = append(vs, v) }, func(l bkLog) { logs = append(logs, l) })
	return vs, logs
}

func TestDecodeStatus(t *testing.T) {
	pb := statusMsg([]testVertex{
		{digest: "sha256:a", name: "[1/2] COPY payload /payload", cached: true, started: true, completed: true},
		{digest: "sha256:b", name: "[2/2] RUN x", started: true, completed: true, err: "exit code: 1"},
	}, testLog("sha256:b", "hello\n"))
	vs, logs := decoded(pb)
	want := []bkVertex{
		{digest: "sha256:a", name: "[1/2] COPY payload /payload", cached: true, started: true, completed: true},
		{digest: "sha256:b", name: "[2/2] RUN x", started: true, completed: true, err: "exit code: 1"},
	}
	if fmt.Sprint(vs) != fmt.Sprint(want) {
		t.Errorf("vertexes: %+v, want %+v", vs, want)
	}
	if len(logs) != 1 || logs[0].vertex != "sha256:b" || string(logs[0].msg) != "hello\n" {
		t.Errorf("logs: %+v", logs)
	}
}

// TestDecodeStatusMalformed: whatever the engine sends, decoding neither panics nor loops.
func TestDecodeStatusMalformed(t *testing.T) {
	good := statusMsg([]testVertex{{digest: "sha256:b", name: "[2/2] RUN x", started: true, err: "boom"}}, testLog("sha256:b", "line\n"))
	for i := range good {
		decoded(good[:i]) // every truncation
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := append([]byte(nil), good...)
		for range 1 + r.IntN(4) {
			b[r.IntN(len(b))] = byte(r.IntN(256))
		}
		decoded(b)
		junk := make([]byte, r.IntN(64))
		for i := range junk {
			junk[i] = byte(r.IntN(256))
		}
		decoded(junk)
	}
	// A vertex field of the wrong wire type is skipped, not misread.
	b := protowire.AppendTag(nil, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, 7)
	if vs, logs := decoded(b); len(vs) != 0 || len(logs) != 0 {
		t.Errorf("a varint vertexes field: %+v %+v", vs, logs)
	}
}

// TestReadBuildKitStream reads a BuildKit stream as the engine sends it: the failing step's
// name and log's tail (not the other steps'), inert text, junk traces ignored, the image ID.
func TestReadBuildKitStream(t *testing.T) {
	var in strings.Builder
	in.WriteString(traceLine(t, statusMsg([]testVertex{{digest: "sha256:ctx", name: "[internal] load remote build context", started: true}})))
	in.WriteString(`{"id":"moby.buildkit.trace","aux":"not base64!"}` + "\n")
	in.WriteString(`{"id":"moby.buildkit.trace","aux":{"an":"object"}}` + "\n")
	in.WriteString(traceLine(t, []byte{0xff, 0xff, 0xff}))
	in.WriteString(traceLine(t, statusMsg([]testVertex{
		{digest: "sha256:other", name: "[build 1/2] RUN other", started: true},
		{digest: "sha256:run", name: "[2/2] RUN [\"/payload\"]", started: true},
	})))
	for i := 1; i <= 30; i++ {
		// A line split across two messages, another step's lines in between.
		in.WriteString(traceLine(t, statusMsg(nil, testLog("sha256:run", fmt.Sprintf("payload: line %d ", i)), testLog("sha256:other", "other step\n"))))
		in.WriteString(traceLine(t, statusMsg(nil, testLog("sha256:run", "\x1b[31mred\x1b[0m\u202e\n"))))
	}
	in.WriteString(traceLine(t, statusMsg([]testVertex{{digest: "sha256:run", started: true, completed: true, err: "exit code: 1"}})))
	in.WriteString(`{"errorDetail":{"message":"executor failed: exit code: 1\u001b[2J"},"error":"executor failed: exit code: 1"}` + "\n")

	var steps []string
	id, tail, err := readBuild(strings.NewReader(in.String()), func(s string) { steps = append(steps, s) })
	if id != "" || err == nil || err.Error() != `[2/2] RUN ["/payload"]: executor failed: exit code: 1` {
		t.Errorf("id %q, error %q", id, err)
	}
	if len(tail) != BuildLogTail || tail[0] != "payload: line 11 red" || tail[BuildLogTail-1] != "payload: line 30 red" {
		t.Errorf("tail: %q", tail)
	}
	if want := []string{"[build 1/2] RUN other", `[2/2] RUN ["/payload"]`}; fmt.Sprint(steps) != fmt.Sprint(want) {
		t.Errorf("steps: %q, want %q", steps, want)
	}

	// A success: the image ID from moby.image.id.
	ok := traceLine(t, statusMsg([]testVertex{{digest: "sha256:x", name: "[1/1] COPY a /", started: true, completed: true}})) +
		`{"id":"moby.image.id","aux":{"ID":"sha256:0123"}}` + "\n"
	if id, _, err := readBuild(strings.NewReader(ok), nil); id != "sha256:0123" || err != nil {
		t.Errorf("a successful build: id %q, error %v", id, err)
	}
}

func TestPickBuilder(t *testing.T) {
	for _, tc := range []struct {
		ping types.Ping
		want Builder
	}{
		{types.Ping{APIVersion: "1.41", OSType: "linux"}, BuilderBuildKit},
		{types.Ping{APIVersion: "1.39", OSType: "linux"}, BuilderBuildKit},
		{types.Ping{APIVersion: "1.38", OSType: "linux"}, BuilderClassic},
		{types.Ping{APIVersion: "1.41", OSType: "windows"}, BuilderClassic},
		{types.Ping{APIVersion: "", OSType: "linux"}, BuilderClassic},
		{types.Ping{APIVersion: "1.45", OSType: "linux", BuilderVersion: build.BuilderV1}, BuilderClassic},
		{types.Ping{APIVersion: "1.45", OSType: "windows", BuilderVersion: build.BuilderBuildKit}, BuilderBuildKit},
	} {
		if got := pickBuilder(tc.ping); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.ping, got, tc.want)
		}
	}
}

func TestBuilderFromEnv(t *testing.T) {
	for v, want := range map[string]Builder{"": BuilderAuto, " ": BuilderAuto, "0": BuilderClassic, "false": BuilderClassic, "1": BuilderBuildKit, "true": BuilderBuildKit} {
		if got, err := builderFromEnv(v); got != want || err != nil {
			t.Errorf("DOCKER_BUILDKIT=%q: %q %v, want %q", v, got, err, want)
		}
	}
	if _, err := builderFromEnv("yes please"); err == nil || !strings.Contains(err.Error(), `DOCKER_BUILDKIT "yes please"`) {
		t.Errorf("DOCKER_BUILDKIT=yes please: %v", err)
	}
	if _, err := chooseBuilder(t.Context(), nil, Builder("kaniko"), nil); err == nil {
		t.Error("an unknown builder was accepted")
	}
	var refusedErr = fmt.Errorf("build %q: %w: %w: %w", "x", ErrBuild, errBuildKitRefused, errors.New("no"))
	var out strings.Builder
	c := &builderChoice{b: BuilderBuildKit, fallback: true, w: &out}
	if !c.refused(BuilderBuildKit, refusedErr) || !c.refused(BuilderBuildKit, refusedErr) || c.get() != BuilderClassic || strings.Count(out.String(), "classic builder") != 1 {
		t.Errorf("a refused BuildKit: %q, now %q", out.String(), c.get())
	}
	forced := &builderChoice{b: BuilderBuildKit, w: &out}
	if forced.refused(BuilderBuildKit, refusedErr) || forced.refused(BuilderBuildKit, ErrBuild) {
		t.Error("BuildKit asked for fell back")
	}
}

// TestReadBuildHostileMemory: what harmony allocates reading a build's output stays within a
// small multiple of the output's size (itself capped by MaxBuildOutput), whatever an engine
// packs into it: millions of empty vertexes or logs in one BuildKit trace, a log of newlines
// or of one-character lines, as BuildKit's protobuf or the classic builder's text.
func TestReadBuildHostileMemory(t *testing.T) {
	const n = 4 << 20
	repeat := func(unit []byte) []byte { return []byte(strings.Repeat(string(unit), n/len(unit))) }
	vertex := testVertex{digest: "sha256:run", name: "[1/1] RUN x", started: true}
	classic := func(s string) string {
		b, err := json.Marshal(map[string]string{"stream": s})
		if err != nil {
			t.Fatal(err)
		}
		return string(b) + "\n"
	}
	for _, c := range []struct {
		name   string
		stream string
	}{
		{"empty vertexes", traceLine(t, repeat([]byte{0x0a, 0x00}))},
		{"one-byte vertexes", traceLine(t, repeat([]byte{0x0a, 0x03, 0x0a, 0x01, 'x'}))},
		{"empty logs", traceLine(t, repeat([]byte{0x1a, 0x00}))},
		{"a log of newlines", traceLine(t, statusMsg([]testVertex{vertex}, testLog("sha256:run", strings.Repeat("\n", n))))},
		{"a log of short lines", traceLine(t, statusMsg([]testVertex{vertex}, testLog("sha256:run", strings.Repeat("x\n", n/2))))},
		{"classic short lines", classic(strings.Repeat("x\n", n/2))},
	} {
		t.Run(c.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, tail, _ := readBuild(strings.NewReader(c.stream), nil)
			runtime.ReadMemStats(&after)
			got := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d bytes of output: %d MiB allocated, tail %d lines", len(c.stream), got>>20, len(tail))
			if limit := uint64(16 * len(c.stream)); got > limit {
				t.Errorf("reading %d bytes of build output allocated %d MiB (more than %d MiB)", len(c.stream), got>>20, limit>>20)
			}
		})
	}
}
