// Package e2e holds the end-to-end test of the README's quick start, its lines run in order in
// one shell on a fresh account (a new HOME, a PATH without ~/.local/bin): install.sh installs the
// snapshot release from a local GitHub-shaped mirror and sets PATH up, the env line puts harmony
// on this shell's PATH, then `harmony launch` bootstraps the runtime (the k3s test stand-in,
// reaching the real test API server), applies the example, waits until it runs and prints how to
// reach it; `harmony down` removes it.
package e2e
