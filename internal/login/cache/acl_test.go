package cache

import (
	"strings"
	"testing"
)

// TestCheckACL is the Windows privacy rule, judged on the ACLs Windows
// would report: the friendly ones kip writes or a profile folder gives,
// and the hostile ones another user could have planted or a careless copy
// left.
func TestCheckACL(t *testing.T) {
	const (
		alice    = "S-1-5-21-1004336348-1177238915-682003330-1001"
		bob      = "S-1-5-21-1004336348-1177238915-682003330-1002"
		users    = "S-1-5-32-545"
		world    = "S-1-1-0"
		creator  = "S-1-3-0"
		readMask = 0x120089 // FILE_GENERIC_READ
		fileAll  = 0x1f01ff // FILE_ALL_ACCESS
	)
	me := principal{User: alice, DefaultOwner: alice}
	elevated := principal{User: alice, DefaultOwner: sidAdministrators}
	allow := func(sid string, mask uint32) ace { return ace{Type: aceAllow, SID: sid, Mask: mask} }
	tests := []struct {
		name    string
		info    securityInfo
		me      principal
		wantErr string
	}{
		{name: "kip's own: the user alone", info: securityInfo{Owner: alice, ACEs: []ace{allow(alice, fileAll)}}},
		{name: "a profile folder's: user, SYSTEM and Administrators",
			info: securityInfo{Owner: alice, ACEs: []ace{allow(sidLocalSystem, fileAll), allow(sidAdministrators, fileAll), allow(alice, fileAll)}}},
		{name: "an elevated administrator's file", me: elevated,
			info: securityInfo{Owner: sidAdministrators, ACEs: []ace{allow(alice, fileAll)}}},
		{name: "a deny entry for everyone only takes access away",
			info: securityInfo{Owner: alice, ACEs: []ace{{Type: aceDeny, SID: world, Mask: fileAll}, allow(alice, fileAll)}}},
		{name: "an allow entry with no rights grants nothing",
			info: securityInfo{Owner: alice, ACEs: []ace{allow(alice, fileAll), allow(world, 0)}}},
		{name: "an empty DACL: nobody may open it, the owner can still fix it",
			info: securityInfo{Owner: alice}},

		{name: "owned by another user", wantErr: "owned by another user (" + bob + ")",
			info: securityInfo{Owner: bob, ACEs: []ace{allow(alice, fileAll)}}},
		{name: "Administrators as owner when not elevated", wantErr: "owned by another user",
			info: securityInfo{Owner: sidAdministrators, ACEs: []ace{allow(alice, fileAll)}}},
		{name: "a NULL DACL opens it to everyone", wantErr: "open to everyone",
			info: securityInfo{Owner: alice, NoDACL: true}},
		{name: "Everyone may read", wantErr: "allows " + world,
			info: securityInfo{Owner: alice, ACEs: []ace{allow(alice, fileAll), allow(world, readMask)}}},
		{name: "Users may read, as a file copied from a shared folder", wantErr: "allows " + users,
			info: securityInfo{Owner: alice, ACEs: []ace{allow(alice, fileAll), allow(users, readMask)}}},
		{name: "another user may read", wantErr: "allows " + bob,
			info: securityInfo{Owner: alice, ACEs: []ace{allow(alice, fileAll), allow(bob, readMask)}}},
		{name: "CREATOR OWNER is not the user", wantErr: "allows " + creator,
			info: securityInfo{Owner: alice, ACEs: []ace{allow(alice, fileAll), allow(creator, fileAll)}}},
		{name: "a deny does not excuse a later allow", wantErr: "allows " + world,
			info: securityInfo{Owner: alice, ACEs: []ace{{Type: aceDeny, SID: bob, Mask: fileAll}, allow(world, readMask)}}},
		{name: "an object entry kip cannot judge", wantErr: "entry of type 5",
			info: securityInfo{Owner: alice, ACEs: []ace{allow(alice, fileAll), {Type: 5, Mask: readMask}}}},
		{name: "a callback entry kip cannot judge", wantErr: "entry of type 9",
			info: securityInfo{Owner: alice, ACEs: []ace{{Type: 9, Mask: readMask}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			who := tc.me
			if who == (principal{}) {
				who = me
			}
			err := checkACL(tc.info, who)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("accepted, want %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("error %q, want %q", err, tc.wantErr)
			}
		})
	}
}

// TestPrivateSDDL: the DACL kip writes is protected from inheritance and
// names the user alone; a directory's entry is inherited by its files.
func TestPrivateSDDL(t *testing.T) {
	const sid = "S-1-5-21-1-2-3-1001"
	if got, want := privateSDDL(sid, false), "D:P(A;;FA;;;"+sid+")"; got != want {
		t.Errorf("file: %s, want %s", got, want)
	}
	if got, want := privateSDDL(sid, true), "D:P(A;OICI;FA;;;"+sid+")"; got != want {
		t.Errorf("directory: %s, want %s", got, want)
	}
}
