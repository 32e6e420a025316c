//go:build !unix

package launch

// openNonblock: opening a file never waits for a writer here.
const openNonblock = 0
