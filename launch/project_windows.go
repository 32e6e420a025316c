//go:build windows

package launch

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/windows"
)

// trusted reports whether a project marker (.git, harmony.yaml) in dir may define the project:
// the marker and its folder are owned by the user running harmony, by SYSTEM or by the
// Administrators group (as the Unix code wants the user or root). Another user's C:\.git or
// C:\harmony.yaml does not make C:\ the root of every project below it.
func trusted(dir string, marker os.FileInfo) bool {
	return ownedByUserOrSystem(dir) && ownedByUserOrSystem(filepath.Join(dir, marker.Name()))
}

func ownedByUserOrSystem(path string) bool {
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION)
	if err != nil {
		return false
	}
	owner, _, err := sd.Owner()
	if err != nil || owner == nil {
		return false
	}
	if user, err := windows.GetCurrentProcessToken().GetTokenUser(); err == nil && owner.Equals(user.User.Sid) {
		return true
	}
	for _, known := range []windows.WELL_KNOWN_SID_TYPE{windows.WinLocalSystemSid, windows.WinBuiltinAdministratorsSid} {
		if sid, err := windows.CreateWellKnownSid(known); err == nil && owner.Equals(sid) {
			return true
		}
	}
	return false
}
