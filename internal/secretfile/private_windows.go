//go:build windows

package secretfile

import (
	"fmt"
	"io/fs"
	"strings"
	"unsafe"

	"golang.org/x/sys/windows"
)

// checkPrivateMode refuses a file whose access list lets anyone but its
// owner, the current user, SYSTEM or the Administrators read it: Windows
// reports every file as mode 0666 or 0444, so the access list is what says.
func checkPrivateMode(path, what string, _ fs.FileInfo) error {
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION|windows.OWNER_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf("%s %s: cannot read its access list: %w", what, path, err)
	}
	self := []string{}
	if user, err := currentUser(); err == nil {
		self = append(self, user)
	}
	if owner, _, err := sd.Owner(); err == nil && owner != nil {
		self = append(self, owner.String())
	}
	dacl, _, err := sd.DACL()
	null := dacl == nil || err != nil
	var aces []ace
	if !null {
		for i := range uint32(dacl.AceCount) {
			var a *windows.ACCESS_ALLOWED_ACE
			if err := windows.GetAce(dacl, i, &a); err != nil {
				return fmt.Errorf("%s %s: cannot read its access list: %w", what, path, err)
			}
			if a.Header.AceType != windows.ACCESS_ALLOWED_ACE_TYPE {
				continue // denials only take away
			}
			sid := (*windows.SID)(unsafe.Pointer(&a.SidStart))
			aces = append(aces, ace{sid: sid.String(), mask: uint32(a.Mask), inheritOnly: a.Header.AceFlags&windows.INHERIT_ONLY_ACE != 0})
		}
	}
	if who := othersWhoRead(null, aces, self...); len(who) > 0 {
		return fmt.Errorf("%s %s is readable by others (%s): run `%s`", what, path, strings.Join(who, ", "), aclFix(path))
	}
	return nil
}

// makePrivate gives path an access list for the current user alone, not
// inherited from its directory; a directory's is inherited by what is
// made in it.
func makePrivate(path string, dir bool) error {
	user, err := currentUser()
	if err != nil {
		return err
	}
	sd, err := windows.SecurityDescriptorFromString(privateSDDL(user, dir))
	if err != nil {
		return err
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return err
	}
	return windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil)
}

func currentUser() (string, error) {
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return "", err
	}
	return u.User.Sid.String(), nil
}
