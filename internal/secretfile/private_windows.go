//go:build windows

package secretfile

import (
	"fmt"
	"io/fs"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/windows"
)

// checkPrivateMode refuses a file whose access list lets anyone but its
// owner, the current user, SYSTEM or the Administrators read it: Windows
// reports every file as mode 0666 or 0444, so the access list is what says.
func checkPrivateMode(path, what string, _ fs.FileInfo) error {
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err == nil && sd == nil {
		err = fmt.Errorf("no security descriptor")
	}
	if err != nil {
		return fmt.Errorf("%s %s: cannot read its access list: %w", what, path, err)
	}
	user, err := currentUser()
	if err != nil {
		return fmt.Errorf("%s %s: cannot tell who runs this process: %w", what, path, err)
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
			e, err := aceOf(a)
			if err != nil {
				return fmt.Errorf("%s %s: %v: run `%s`", what, path, err, aclFix(path, user, nil))
			}
			if e != nil {
				aces = append(aces, *e)
			}
		}
	}
	if who := othersWhoRead(null, aces, user); len(who) > 0 {
		return fmt.Errorf("%s %s is readable by others (%s): run `%s`", what, path, strings.Join(who, ", "), aclFix(path, user, who))
	}
	return nil
}

// aceOf reads one entry of an access list: nil for a denial (it only
// takes away); an error for an allowing entry of a kind whose account is
// not read here (object and conditional entries), which is refused rather
// than trusted.
func aceOf(a *windows.ACCESS_ALLOWED_ACE) (*ace, error) {
	switch kindOfACE(a.Header.AceType) {
	case aceAllow:
		sid := (*windows.SID)(unsafe.Pointer(&a.SidStart))
		return &ace{sid: sid.String(), mask: uint32(a.Mask), inheritOnly: a.Header.AceFlags&windows.INHERIT_ONLY_ACE != 0}, nil
	case aceDeny:
		return nil, nil
	}
	return nil, fmt.Errorf("its access list has an entry of kind %d, which tokenbroker cannot check", a.Header.AceType)
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

// MakePrivate gives an existing file (SQLite's journal files, which
// take their directory's access list) an access list for the current user
// alone; a missing file is no error.
func MakePrivate(path string) error {
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	return makePrivate(path, false)
}

// syncDir: Windows has no fsync of a directory; NTFS journals the
// rename's metadata.
func syncDir(string) error { return nil }

func currentUser() (string, error) {
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return "", err
	}
	return u.User.Sid.String(), nil
}
