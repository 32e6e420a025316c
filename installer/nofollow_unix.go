//go:build unix

package installer

import "syscall"

// oNoFollow makes open fail on a symlink instead of following it.
const oNoFollow = syscall.O_NOFOLLOW
