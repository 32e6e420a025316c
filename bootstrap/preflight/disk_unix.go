//go:build unix

package preflight

import "golang.org/x/sys/unix"

func diskSpace(path string) (Space, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return Space{}, err
	}
	bs := uint64(st.Bsize) //nolint:unconvert // int64 on Linux, uint32 on macOS
	return Space{Total: st.Blocks * bs, Free: st.Bavail * bs, Inodes: st.Files, FreeInodes: st.Ffree}, nil
}
