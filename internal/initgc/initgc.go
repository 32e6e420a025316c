// Package initgc holds the garbage collector off while the program's packages initialise, and
// gives it back with Done, which main calls first.
//
// harmony's dependencies allocate about 7 MB as they initialise (client-go's scheme, the JSON
// Schema meta-schemas Helm's values check compiles, regexps), and with the collector on that
// is two collections of a heap that is all live anyway, before any command runs: about a sixth
// of the CPU time of a short command such as `harmony version` (scripts/bench startup). The
// collector is off from this package's initialisation on: the linker initialises packages in
// dependency order and, among those ready, in the order of their import paths, so packages that
// sort before runtime/debug and do not wait for later ones run first, with the collector on.
package initgc

import "runtime/debug"

// percent is the collector's setting before this package turned it off: GOGC's, or 100.
var percent = debug.SetGCPercent(-1)

// Done gives the collector its setting back.
func Done() {
	debug.SetGCPercent(percent)
}
