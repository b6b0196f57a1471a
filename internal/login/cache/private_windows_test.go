package cache

import (
	"testing"

	"golang.org/x/sys/windows"
)

// assertPrivate: what kip wrote passes its own ACL check, and a file's
// DACL is the one kip gives it: the user alone, nothing inherited.
func assertPrivate(t *testing.T, path string, dir bool) {
	t.Helper()
	s, me, err := security(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkACL(s, me); err != nil {
		t.Errorf("%s: %v", path, err)
	}
	if !dir && (len(s.ACEs) != 1 || s.ACEs[0].SID != me.User) {
		t.Errorf("%s: access control entries %+v, want the user's alone", path, s.ACEs)
	}
}

// openToOthers lets Everyone read path, as a folder shared by mistake.
func openToOthers(t *testing.T, path string) {
	t.Helper()
	sd, err := windows.SecurityDescriptorFromString("D:(A;OICI;FR;;;WD)")
	if err != nil {
		t.Fatal(err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		t.Fatal(err)
	}
	if err := windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION, nil, nil, dacl, nil); err != nil {
		t.Fatal(err)
	}
	if s, me, err := security(path); err != nil || checkACL(s, me) == nil {
		t.Fatalf("%s is still private after opening it to Everyone (%v)", path, err)
	}
}
