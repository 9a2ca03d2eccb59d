package secretfile

import (
	"reflect"
	"testing"
)

func TestOthersWhoRead(t *testing.T) {
	const me, other = "S-1-5-21-1-2-3-1001", "S-1-5-21-1-2-3-1002"
	for _, c := range []struct {
		name string
		null bool
		aces []ace
		want []string
	}{
		{"only me", false, []ace{{sid: me, mask: 0x1f01ff}}, nil},
		{"me, SYSTEM and Administrators", false, []ace{{sid: me, mask: 0x1f01ff}, {sid: "S-1-5-18", mask: 0x1f01ff}, {sid: "S-1-5-32-544", mask: 0x1f01ff}}, nil},
		{"Users may read", false, []ace{{sid: me, mask: 0x1f01ff}, {sid: "S-1-5-32-545", mask: 0x1200a9}}, []string{"S-1-5-32-545"}},
		{"Everyone by GENERIC_READ", false, []ace{{sid: "S-1-1-0", mask: 0x80000000}}, []string{"S-1-1-0"}},
		{"another user, twice", false, []ace{{sid: other, mask: 0x1}, {sid: other, mask: 0x10000000}}, []string{other}},
		{"write without read", false, []ace{{sid: other, mask: 0x2}}, nil},
		{"may change the access list", false, []ace{{sid: other, mask: 0x40000}}, []string{other}},
		{"may take ownership", false, []ace{{sid: other, mask: 0x80000}}, []string{other}},
		{"inherit-only entries do not apply", false, []ace{{sid: other, mask: 0x1f01ff, inheritOnly: true}}, nil},
		{"no access list at all", true, nil, []string{"Everyone (the file has no access list)"}},
	} {
		if got := othersWhoRead(c.null, c.aces, me); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestPrivateSDDL(t *testing.T) {
	if got := privateSDDL("S-1-5-21-9", false); got != "D:P(A;;FA;;;S-1-5-21-9)" {
		t.Errorf("file: %s", got)
	}
	if got := privateSDDL("S-1-5-21-9", true); got != "D:P(A;OICI;FA;;;S-1-5-21-9)" {
		t.Errorf("directory: %s", got)
	}
}

func TestACLFixNamesThePathAndTheOthers(t *testing.T) {
	got := aclFix(`C:\Users\me\AppData\Local\tokenbroker\state.db`, "S-1-5-21-1-2-3-1001", []string{"S-1-5-32-545", "Everyone (the file has no access list)"})
	want := `icacls "C:\Users\me\AppData\Local\tokenbroker\state.db" /inheritance:r /grant:r *S-1-5-21-1-2-3-1001:F /remove:g *S-1-5-32-545`
	if got != want {
		t.Errorf("%s, want %s", got, want)
	}
}

func TestKindOfACE(t *testing.T) {
	for typ, want := range map[byte]int{0: aceAllow, 1: aceDeny, 6: aceDeny, 10: aceDeny, 12: aceDeny, 5: aceUnknown, 9: aceUnknown, 11: aceUnknown} {
		if got := kindOfACE(typ); got != want {
			t.Errorf("type %d: %d, want %d", typ, got, want)
		}
	}
}
