//go:build !unix

package preflight

import "errors"

// diskSpace is read on Unix hosts only: elsewhere the runtime's disk is Docker's, in its VM.
func diskSpace(string) (Space, error) { return Space{}, errors.ErrUnsupported }
