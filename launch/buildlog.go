package launch

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/docker/docker/pkg/jsonmessage"
	"google.golang.org/protobuf/encoding/protowire"
)

// The JSON messages of a build's stream that are not log text (moby's names for them).
const (
	// buildkitTraceID marks BuildKit's progress: its aux is a base64 protobuf
	// moby.buildkit.v1.StatusResponse.
	buildkitTraceID = "moby.buildkit.trace"
)

// maxTrackedSteps caps how many BuildKit steps a build's reader remembers by name and log;
// the log of steps past it still reaches the build's tail.
const maxTrackedSteps = 1024

// maxPartialLine caps the unfinished last line of a log kept between two pieces of it.
const maxPartialLine = 4096

// readBuild reads a build's JSON message stream (at most MaxBuildOutput bytes: a build printing
// more is stopped) and returns the built image's ID and the log's last lines, sanitized. The
// classic builder's log comes as text; BuildKit's as protobuf status messages (see
// decodeStatus), whose failing step's log and error the result carries. step, when not nil,
// is called with each step's name as the step starts.
func readBuild(body io.Reader, step func(string)) (string, []string, error) {
	lr := &capReader{r: body, left: MaxBuildOutput}
	dec := json.NewDecoder(lr)
	s := &buildStream{step: step}
	var id string
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return id, s.lines(), nil
		} else if err != nil {
			if lr.over {
				return "", s.lines(), fmt.Errorf("the build printed more than %s: stopped", size(MaxBuildOutput))
			}
			return "", s.lines(), fmt.Errorf("read the build's output: %w", err)
		}
		switch {
		case m.Error != nil:
			return "", s.lines(), s.failure(m.Error.Message)
		case m.ErrorMessage != "":
			return "", s.lines(), s.failure(m.ErrorMessage)
		case m.ID == buildkitTraceID && m.Aux != nil:
			s.trace(*m.Aux)
		case m.Aux != nil:
			var aux struct{ ID string }
			if json.Unmarshal(*m.Aux, &aux) == nil && aux.ID != "" {
				id = aux.ID // the classic builder's, or BuildKit's moby.image.id
			}
		case m.Stream != "":
			s.text(m.Stream)
		case m.Status != "":
			s.text(m.Status + "\n")
		}
	}
}

// buildStream is what readBuild keeps of a build's log.
type buildStream struct {
	step func(string)
	all  lineTail // the whole log's last lines
	// BuildKit: each step's name and log, the first step that failed and why.
	steps     map[string]*stepLog
	other     lineTail // the log of steps past maxTrackedSteps
	failed    string
	failedErr string
}

type stepLog struct {
	name     string
	log      lineTail
	reported bool
}

// text takes the classic builder's log.
func (s *buildStream) text(t string) {
	s.all.add(t, func(l string) {
		if s.step != nil && classicStep.MatchString(l) {
			s.step(l)
		}
	})
}

// trace takes one BuildKit status message; one that does not decode is ignored.
func (s *buildStream) trace(aux json.RawMessage) {
	var enc string
	if json.Unmarshal(aux, &enc) != nil {
		return
	}
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return
	}
	decodeStatus(b, s.vertex, s.log)
}

// vertex takes one of BuildKit's vertexes: a step's name, start, failure.
func (s *buildStream) vertex(v bkVertex) {
	st := s.stepOf(v.digest)
	if st == nil {
		return
	}
	if v.name != "" {
		st.name = v.name
	}
	if v.err != "" && s.failed == "" {
		s.failed, s.failedErr = v.digest, v.err
	}
	if v.started && !v.cached && !st.reported && isDockerfileStep(st.name) {
		st.reported = true
		if s.step != nil {
			s.step(inert(st.name))
		}
	}
}

// log takes one of BuildKit's logs: a piece of a step's output.
func (s *buildStream) log(l bkLog) {
	t := &s.other
	if st := s.stepOf(l.vertex); st != nil {
		t = &st.log
	}
	t.add(string(l.msg), s.all.push)
}

// stepOf is the step of a vertex digest, remembered up to maxTrackedSteps; nil past that.
func (s *buildStream) stepOf(digest string) *stepLog {
	if digest == "" {
		return nil
	}
	if st, ok := s.steps[digest]; ok {
		return st
	}
	if len(s.steps) >= maxTrackedSteps {
		return nil
	}
	if s.steps == nil {
		s.steps = map[string]*stepLog{}
	}
	st := &stepLog{}
	s.steps[digest] = st
	return st
}

// isDockerfileStep says whether a BuildKit vertex is a step of the Dockerfile ("[2/3] RUN …",
// "[build 1/4] COPY …"), not BuildKit's own work ("[internal] load …", "exporting to image").
func isDockerfileStep(name string) bool {
	return strings.HasPrefix(name, "[") && !strings.HasPrefix(name, "[internal]")
}

// failure is the build's error: the engine's message, after the failing step's name when
// BuildKit named one.
func (s *buildStream) failure(msg string) error {
	msg = inert(msg)
	if st := s.steps[s.failed]; st != nil && st.name != "" {
		return fmt.Errorf("%s: %s", inert(st.name), msg)
	}
	return errors.New(msg)
}

// inert is a line of a build's output made safe to print: terminal controls removed, sanitized.
// A short line of printable ASCII, the usual one, is its own inert form.
func inert(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return Sanitize(ansiCSI.ReplaceAllString(s, ""))
		}
	}
	if len(s) > MaxLineRunes {
		return Sanitize(s)
	}
	return s
}

// lines is the log's last lines: the failing step's with BuildKit (when it printed any), else
// the whole log's.
func (s *buildStream) lines() []string {
	if st := s.steps[s.failed]; st != nil {
		st.log.flush(nil)
		if len(st.log.lines) > 0 {
			return st.log.lines
		}
	}
	for _, st := range s.steps {
		st.log.flush(s.all.push)
	}
	s.all.flush(nil)
	return s.all.lines
}

// lineTail keeps the last BuildLogTail lines of a log that arrives in pieces: terminal
// controls stripped, sanitized, the classic builder's bookkeeping left out.
type lineTail struct {
	lines   []string
	partial string
}

// add takes a piece of the log and keeps the lines it completes, each also given to done when
// done is not nil. It goes through the piece line by line, keeping nothing more than the tail:
// a piece of millions of lines costs no more memory than one of twenty.
func (t *lineTail) add(s string, done func(string)) {
	if t.partial != "" {
		s, t.partial = t.partial+s, ""
	}
	for {
		l, rest, ok := strings.Cut(s, "\n")
		if !ok {
			break
		}
		s = rest
		l = inert(l)
		if x := strings.TrimSpace(l); x == "" || strings.HasPrefix(x, "--->") || strings.HasPrefix(x, "Removing intermediate container ") {
			continue // the classic builder's bookkeeping
		}
		t.push(l)
		if done != nil {
			done(l)
		}
	}
	if len(s) > maxPartialLine {
		s = s[:maxPartialLine]
	}
	t.partial = strings.Clone(s) // not the whole piece it ends
}

// push keeps one finished line.
func (t *lineTail) push(l string) {
	if len(t.lines) == BuildLogTail {
		copy(t.lines, t.lines[1:]) // in place: millions of lines allocate nothing
		t.lines[BuildLogTail-1] = l
		return
	}
	t.lines = append(t.lines, l)
}

// flush finishes the last line, if any, as add does.
func (t *lineTail) flush(done func(string)) {
	if strings.TrimSpace(t.partial) != "" {
		t.add("\n", done)
	}
}

// classicStep matches the classic builder's line starting a step ("Step 2/4 : COPY …").
var classicStep = regexp.MustCompile(`^Step [0-9]+/[0-9]+ : `)

// ansiCSI matches a terminal control sequence (colours, cursor moves) in a build's log.
var ansiCSI = regexp.MustCompile("\x1b\\[[0-9;?]*[ -/]*[@-~]")

// bkVertex and bkLog are the fields harmony reads of BuildKit's Vertex and VertexLog.
type bkVertex struct {
	digest, name, err          string
	cached, started, completed bool
}

type bkLog struct {
	vertex string
	msg    []byte
}

// decodeStatus reads the vertexes and logs of a moby.buildkit.v1.StatusResponse (BuildKit's
// api/services/control/control.proto):
//
//	StatusResponse{vertexes = 1 repeated Vertex, statuses = 2, logs = 3 repeated VertexLog, warnings = 4}
//	Vertex{digest = 1 string, inputs = 2, name = 3 string, cached = 4 bool, started = 5 Timestamp,
//	       completed = 6 Timestamp, error = 7 string}
//	VertexLog{vertex = 1 string, timestamp = 2, stream = 3 int64, msg = 4 bytes}
//
// with protowire, so that harmony does not depend on BuildKit. Each vertex and log goes to
// vertex and log as it is read, so that a message of millions of them is never held as a list.
// Other fields are skipped; a malformed message ends the decoding with what was read so far.
func decodeStatus(b []byte, vertex func(bkVertex), log func(bkLog)) {
	eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) {
		if typ != protowire.BytesType {
			return
		}
		switch num {
		case 1:
			var x bkVertex
			eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, n uint64) {
				switch {
				case num == 1 && typ == protowire.BytesType:
					x.digest = string(v)
				case num == 3 && typ == protowire.BytesType:
					x.name = string(v)
				case num == 4 && typ == protowire.VarintType:
					x.cached = n != 0
				case num == 5 && typ == protowire.BytesType:
					x.started = true
				case num == 6 && typ == protowire.BytesType:
					x.completed = true
				case num == 7 && typ == protowire.BytesType:
					x.err = string(v)
				}
			})
			vertex(x)
		case 3:
			var x bkLog
			eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) {
				switch {
				case num == 1 && typ == protowire.BytesType:
					x.vertex = string(v)
				case num == 4 && typ == protowire.BytesType:
					x.msg = v
				}
			})
			log(x)
		}
	})
}

// eachField calls f with each field of a protobuf message: its number, wire type, and its
// bytes (length-delimited fields) or number (varints). It stops at the first malformed field.
func eachField(b []byte, f func(protowire.Number, protowire.Type, []byte, uint64)) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return
		}
		b = b[n:]
		switch typ {
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return
			}
			f(num, typ, v, 0)
			b = b[n:]
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return
			}
			f(num, typ, nil, v)
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return
			}
			b = b[n:]
		}
	}
}
