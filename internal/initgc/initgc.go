// Package initgc holds the garbage collector off while the program's packages initialise, and
// gives it back with Done, which main calls first.
//
// harmony's dependencies allocate about 7 MB as they initialise (client-go's scheme, the JSON
// Schema meta-schemas Helm's values check compiles, regexps), nearly all of it live for the
// program's life. With the collector on, that is two collections before any command runs, and
// a third as the command starts: about a sixth of the CPU time of a short command such as
// `harmony version` (scripts/bench startup). The collector is off from this package's
// initialisation on: the linker initialises packages in dependency order and, among those
// ready, in the order of their import paths, so packages that sort before runtime/debug and do
// not wait for later ones run first, with the collector on.
package initgc

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// percent is the collector's setting before this package turned it off: GOGC's, or 100.
var percent = debug.SetGCPercent(-1)

// minHeap is the runtime's heap goal before its first collection, at GOGC=100 (4 MiB).
const minHeap = 4 << 20

// Done gives the collector its setting back. The first collection then waits until the heap
// has grown by that setting beyond what the initialisation left, as if that had been the live
// heap of a collection (the runtime's first goal ignores it, and would collect at once); after
// it, the setting is the one it was.
func Done() {
	if percent <= 0 {
		debug.SetGCPercent(percent)
		return
	}
	// Not runtime.ReadMemStats, which stops the world and costs more than the collection.
	heap := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(heap)
	if heap[0].Value.Kind() != metrics.KindUint64 {
		debug.SetGCPercent(percent)
		return
	}
	giveBack(heap[0].Value.Uint64())
}

// giveBack sets the collector's first goal from the live heap, and its setting after that.
func giveBack(live uint64) {
	goal := live + live*uint64(percent)/100
	first := max(percent, int(goal*100/minHeap))
	debug.SetGCPercent(first)
	if first != percent {
		// The finaliser runs once the first collection has found the sentinel unreachable.
		runtime.SetFinalizer(&sentinel{}, func(*sentinel) { debug.SetGCPercent(percent) })
	}
}

// sentinel is big enough not to share a tiny allocation block, whose finalisers may never run.
type sentinel struct{ _ [2]*byte }
