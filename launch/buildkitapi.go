package launch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protowire"
)

// The few calls of BuildKit's control API (moby.buildkit.v1.Control, its
// api/services/control/control.proto) harmony makes, their messages written and read with
// protowire as decodeStatus reads the status stream: the generated packages would bring every
// LLB operation's code (solver/pb) into the binary for four messages.
const (
	bkControl     = "/moby.buildkit.v1.Control/"
	bkListWorkers = bkControl + "ListWorkers"
	bkSolve       = bkControl + "Solve"
	bkStatus      = bkControl + "Status"
	bkSessionRPC  = bkControl + "Session"
)

// rawMessage is a protobuf message as bytes: what rawCodec sends and receives.
type rawMessage struct{ b []byte }

// rawCodec hands gRPC messages through as bytes.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) ([]byte, error) {
	m, ok := v.(*rawMessage)
	if !ok {
		return nil, fmt.Errorf("rawCodec: %T is not a raw message", v)
	}
	return m.b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(*rawMessage)
	if !ok {
		return fmt.Errorf("rawCodec: %T is not a raw message", v)
	}
	m.b = append(m.b[:0], data...)
	return nil
}

var rawCall = grpc.ForceCodec(rawCodec{})

// bkWorker is what harmony reads of a moby.buildkit.v1.types.WorkerRecord: its labels.
type bkWorker struct {
	id     string
	labels map[string]string
}

// listWorkers calls ListWorkers: ListWorkersResponse{record = 1 repeated WorkerRecord{ID = 1,
// Labels = 2 map<string,string>}}.
func listWorkers(ctx context.Context, conn *grpc.ClientConn) ([]bkWorker, error) {
	var resp rawMessage
	if err := conn.Invoke(ctx, bkListWorkers, &rawMessage{}, &resp, rawCall); err != nil {
		return nil, err
	}
	return decodeWorkers(resp.b), nil
}

// decodeWorkers reads a ListWorkersResponse.
func decodeWorkers(b []byte) []bkWorker {
	var ws []bkWorker
	eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) {
		if num != 1 || typ != protowire.BytesType {
			return
		}
		w := bkWorker{labels: map[string]string{}}
		eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) {
			switch {
			case num == 1 && typ == protowire.BytesType:
				w.id = string(v)
			case num == 2 && typ == protowire.BytesType:
				k, val := mapEntry(v)
				w.labels[k] = val
			}
		})
		ws = append(ws, w)
	})
	return ws
}

// mapEntry reads a map<string,string> entry: {key = 1, value = 2}.
func mapEntry(b []byte) (string, string) {
	var k, v string
	eachField(b, func(num protowire.Number, typ protowire.Type, b []byte, _ uint64) {
		switch {
		case num == 1 && typ == protowire.BytesType:
			k = string(b)
		case num == 2 && typ == protowire.BytesType:
			v = string(b)
		}
	})
	return k, v
}

// bkSolveRequest is the part of a moby.buildkit.v1.SolveRequest harmony sends.
type bkSolveRequest struct {
	ref, session, frontend string
	frontendAttrs          map[string]string
	exporter               string
	exporterAttrs          map[string]string
}

// encode writes the request: Ref = 1, ExporterDeprecated = 3, ExporterAttrsDeprecated = 4,
// Session = 5, Frontend = 6, FrontendAttrs = 7, Exporters = 13 (Exporter{Type = 1, Attrs = 2}).
// The exporter goes in both forms, as BuildKit's client sends it: daemons before the list read
// the first.
func (r bkSolveRequest) encode() []byte {
	var b []byte
	b = appendString(b, 1, r.ref)
	b = appendString(b, 3, r.exporter)
	b = appendMap(b, 4, r.exporterAttrs)
	b = appendString(b, 5, r.session)
	b = appendString(b, 6, r.frontend)
	b = appendMap(b, 7, r.frontendAttrs)
	var ex []byte
	ex = appendString(ex, 1, r.exporter)
	ex = appendMap(ex, 2, r.exporterAttrs)
	b = protowire.AppendTag(b, 13, protowire.BytesType)
	return protowire.AppendBytes(b, ex)
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendMap(b []byte, num protowire.Number, m map[string]string) []byte {
	for k, v := range m {
		var e []byte
		e = protowire.AppendTag(e, 1, protowire.BytesType)
		e = protowire.AppendString(e, k)
		e = protowire.AppendTag(e, 2, protowire.BytesType)
		e = protowire.AppendString(e, v)
		b = protowire.AppendTag(b, num, protowire.BytesType)
		b = protowire.AppendBytes(b, e)
	}
	return b
}

// solve calls Solve and waits for the build to end.
func solve(ctx context.Context, conn *grpc.ClientConn, r bkSolveRequest) error {
	var resp rawMessage
	return conn.Invoke(ctx, bkSolve, &rawMessage{b: r.encode()}, &resp, rawCall)
}

// buildStatus streams a build's StatusResponse messages (StatusRequest{Ref = 1}) to f until the
// daemon ends the stream or ctx ends.
func buildStatus(ctx context.Context, conn *grpc.ClientConn, ref string, f func([]byte)) error {
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{StreamName: "Status", ServerStreams: true}, bkStatus, rawCall)
	if err != nil {
		return err
	}
	if err := st.SendMsg(&rawMessage{b: appendString(nil, 1, ref)}); err != nil {
		return err
	}
	if err := st.CloseSend(); err != nil {
		return err
	}
	for {
		var m rawMessage
		if err := st.RecvMsg(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		f(m.b)
	}
}

// sessionDialer opens BuildKit's Session stream (BytesMessage{data = 1} both ways) as the
// connection a session's gRPC server runs on: the daemon calls the session's services (the
// build context's file sync) through it. meta are the session's headers.
func sessionDialer(conn *grpc.ClientConn) func(ctx context.Context, proto string, meta map[string][]string) (net.Conn, error) {
	return func(ctx context.Context, _ string, meta map[string][]string) (net.Conn, error) {
		md := metadata.MD{}
		for k, v := range meta {
			md[strings.ToLower(k)] = v
		}
		ctx = metadata.NewOutgoingContext(ctx, md)
		st, err := conn.NewStream(ctx, &grpc.StreamDesc{StreamName: "Session", ServerStreams: true, ClientStreams: true}, bkSessionRPC, rawCall)
		if err != nil {
			return nil, err
		}
		return &streamConn{st: st}, nil
	}
}

// streamConn is a bidirectional stream of BytesMessage as a net.Conn.
type streamConn struct {
	st      grpc.ClientStream
	readMu  sync.Mutex
	rest    []byte // what the last message held beyond the last Read
	writeMu sync.Mutex
	closed  sync.Once
}

func (c *streamConn) Read(p []byte) (int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	for len(c.rest) == 0 {
		var m rawMessage
		if err := c.st.RecvMsg(&m); err != nil {
			return 0, err
		}
		c.rest = bytesField(m.b)
	}
	n := copy(p, c.rest)
	c.rest = c.rest[n:]
	return n, nil
}

// bytesField is the data (field 1) of a BytesMessage.
func bytesField(b []byte) []byte {
	var data []byte
	eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) {
		if num == 1 && typ == protowire.BytesType {
			data = append(data, v...)
		}
	})
	return data
}

func (c *streamConn) Write(p []byte) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	m := protowire.AppendTag(make([]byte, 0, len(p)+8), 1, protowire.BytesType)
	m = protowire.AppendBytes(m, p)
	if err := c.st.SendMsg(&rawMessage{b: m}); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close ends the sending side; the daemon then ends the stream, which the session's reads see.
func (c *streamConn) Close() error {
	c.closed.Do(func() {
		c.writeMu.Lock()
		defer c.writeMu.Unlock()
		_ = c.st.CloseSend()
	})
	return nil
}

func (c *streamConn) LocalAddr() net.Addr              { return streamAddr{} }
func (c *streamConn) RemoteAddr() net.Addr             { return streamAddr{} }
func (c *streamConn) SetDeadline(time.Time) error      { return nil }
func (c *streamConn) SetReadDeadline(time.Time) error  { return nil }
func (c *streamConn) SetWriteDeadline(time.Time) error { return nil }

type streamAddr struct{}

func (streamAddr) Network() string { return "buildkit-session" }
func (streamAddr) String() string  { return "buildkitd" }
