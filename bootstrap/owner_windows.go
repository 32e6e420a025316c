//go:build windows

package bootstrap

func isRoot() bool { return false }

// writableByOthers is only consulted when harmony runs as root, which Windows has not.
func writableByOthers(string) bool { return false }
