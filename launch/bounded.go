package launch

import (
	"context"
	"errors"
	"fmt"
	"runtime/metrics"
	"strings"
	"time"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// RenderLimits bound one rendering (manifests, kustomize, a chart): a repository's templates
// and kustomizations are programs, and one can loop or grow without end.
type RenderLimits struct {
	// Timeout bounds its time (default DefaultRenderTimeout).
	Timeout time.Duration
	// MaxMemory bounds the memory harmony's heap may reach while it runs, in bytes (default
	// DefaultRenderMemory).
	MaxMemory uint64
	// MaxObjects bounds the objects it may produce (default DefaultMaxObjects).
	MaxObjects int
	// Flag names the command line that raises a limit, for the error: "harmony launch" and
	// the project's folder, as typed.
	Command func(flags ...string) string
}

// The default render limits: far above any real project's (a large chart renders a few
// thousand objects in seconds, within a few hundred MiB).
const (
	DefaultRenderTimeout = 2 * time.Minute
	DefaultRenderMemory  = 4 << 30
	DefaultMaxObjects    = 10000
)

// ErrRenderLimit means rendering went past one of its limits and was stopped: nothing was
// applied.
var ErrRenderLimit = errors.New("rendering went past its limit and was stopped; nothing was applied")

func (l RenderLimits) withDefaults() RenderLimits {
	if l.Timeout <= 0 {
		l.Timeout = DefaultRenderTimeout
	}
	if l.MaxMemory == 0 {
		l.MaxMemory = DefaultRenderMemory
	}
	if l.MaxObjects <= 0 {
		l.MaxObjects = DefaultMaxObjects
	}
	if l.Command == nil {
		l.Command = func(flags ...string) string { return "harmony launch " + strings.Join(flags, " ") }
	}
	return l
}

// heapBytes is the memory the Go heap holds now (live and not yet collected), read without
// stopping the world.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// Bounded runs a rendering (what names it, for errors) within l: it returns as soon as ctx is
// cancelled (Ctrl-C), its time is up, or the heap grows past l.MaxMemory, whether or not fn
// looks at its context: the libraries that render (Helm's engine, kustomize) do not. fn then
// goes on in the background until the process exits, which it does right after: a launch
// stopped here applies nothing. count says how many objects a result holds.
func Bounded[T any](ctx context.Context, l RenderLimits, what string, fn func(context.Context) (T, error), count func(T) int) (T, error) {
	l = l.withDefaults()
	var zero T
	rctx, cancel := context.WithTimeout(ctx, l.Timeout)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := fn(rctx)
		done <- result{v, err}
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case r := <-done:
			if r.err != nil {
				if ctx.Err() == nil && rctx.Err() != nil {
					return zero, l.timeout(what)
				}
				return zero, r.err
			}
			if n := count(r.v); n > l.MaxObjects {
				return zero, hint.With(fmt.Errorf("%w: %s rendered %d objects, more than %d", ErrRenderLimit, what, n, l.MaxObjects),
					"if the project really has that many: "+l.Command("--max-objects", fmt.Sprint(n)))
			}
			return r.v, nil
		case <-rctx.Done():
			if ctx.Err() != nil {
				return zero, ctx.Err() // interrupted
			}
			return zero, l.timeout(what)
		case <-tick.C:
			if h := heapBytes(); h > l.MaxMemory {
				return zero, l.memory(what)
			}
		}
	}
}

func (l RenderLimits) memory(what string) error {
	return hint.With(fmt.Errorf("%w: %s used more than %d MiB of memory", ErrRenderLimit, what, l.MaxMemory>>20),
		"a template or kustomization that grows without end does this; if the project really needs more: "+
			l.Command("--render-memory", fmt.Sprint(2*(l.MaxMemory>>20))))
}

func (l RenderLimits) timeout(what string) error {
	return hint.With(fmt.Errorf("%w: %s took longer than %s", ErrRenderLimit, what, l.Timeout),
		"a template or kustomization that loops does this; if the project really takes that long: "+
			l.Command("--render-timeout", (2*l.Timeout).String()))
}
