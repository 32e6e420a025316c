// Package installer owns every byte that harmony takes from outside: it downloads artifacts
// (with retries and resume), hashes them while they stream, accepts them only when they match a
// pinned SHA-256 digest, keeps them in a content-addressed cache, checks minisign signatures,
// extracts archives safely and places files atomically.
package installer
