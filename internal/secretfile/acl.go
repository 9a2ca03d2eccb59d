package secretfile

import (
	"fmt"
	"slices"
	"strings"
)

// The Windows access check, kept free of system calls so that it is
// tested on every platform; private_windows.go feeds it a file's real
// access list.

// ace is one access-allowed entry of a Windows access list.
type ace struct {
	sid         string
	mask        uint32
	inheritOnly bool // applies to children only, not to the file itself
}

// The kinds of access-list entries, by their AceType.
const (
	aceAllow   = iota // ACCESS_ALLOWED: read here
	aceDeny           // a denial of any kind: only takes away
	aceUnknown        // object or conditional allows, and the rest: refused
)

func kindOfACE(t byte) int {
	switch t {
	case 0:
		return aceAllow
	case 1, 6, 10, 12: // ACCESS_DENIED, _OBJECT, _CALLBACK, _CALLBACK_OBJECT
		return aceDeny
	}
	return aceUnknown
}

// readRights are the access bits that let a holder read a file's data,
// or give themselves the right to: FILE_READ_DATA, GENERIC_READ,
// GENERIC_ALL, MAXIMUM_ALLOWED, WRITE_DAC and WRITE_OWNER.
const readRights = 0x1 | 0x80000000 | 0x10000000 | 0x02000000 | 0x40000 | 0x80000

// trustedSIDs may read any file of the machine anyway, as root may on
// Unix: SYSTEM, the Administrators group and OWNER RIGHTS.
var trustedSIDs = []string{"S-1-5-18", "S-1-5-32-544", "S-1-3-4"}

// othersWhoRead lists who else than self (the current user) and the
// trusted accounts may read a file with this access list; a
// missing access list (nullDACL) lets everyone.
func othersWhoRead(nullDACL bool, aces []ace, self ...string) []string {
	if nullDACL {
		return []string{"Everyone (the file has no access list)"}
	}
	var who []string
	for _, a := range aces {
		if a.inheritOnly || a.mask&readRights == 0 || slices.Contains(self, a.sid) || slices.Contains(trustedSIDs, a.sid) {
			continue
		}
		if !slices.Contains(who, a.sid) {
			who = append(who, a.sid)
		}
	}
	return who
}

// privateSDDL is the access list of a file (or a directory, inherited by
// what is made in it) that only sid may use, protected from inheriting.
func privateSDDL(sid string, dir bool) string {
	inherit := ""
	if dir {
		inherit = "OICI"
	}
	return fmt.Sprintf("D:P(A;%s;FA;;;%s)", inherit, sid)
}

// aclFix is the command that makes path private to user (a SID): it
// stops inheriting, grants user full control and removes the others
// found. SIDs are given as *SID, which cmd and PowerShell alike pass on
// untouched.
func aclFix(path, user string, others []string) string {
	cmd := fmt.Sprintf(`icacls "%s" /inheritance:r /grant:r *%s:F`, path, user)
	for _, sid := range others {
		if strings.HasPrefix(sid, "S-") {
			cmd += " /remove:g *" + sid
		}
	}
	return cmd
}
