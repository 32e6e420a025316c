// Package e2e holds the end-to-end test of the README's quick start: install.sh installs the
// snapshot release from a local GitHub-shaped mirror, then `harmony launch` bootstraps the
// runtime (the k3s test stand-in, reaching the real test API server), applies the example,
// waits until it runs and prints how to reach it; `harmony down` removes it.
package e2e
