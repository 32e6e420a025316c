//go:build !linux

package main

// The test node runs on Linux only.
func main() {}
