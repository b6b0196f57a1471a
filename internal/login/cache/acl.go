package cache

import (
	"errors"
	"fmt"
)

// The Windows counterpart of the Unix mode check. Windows keeps no mode
// bits (Go reports every writable file as 0666), so who may open a file
// is in its discretionary access control list (DACL). The rules live here,
// apart from the Windows calls that read an ACL, so that they are tested
// on every system.

// aceType is the type byte of an access control entry.
type aceType uint8

const (
	aceAllow aceType = 0 // ACCESS_ALLOWED_ACE_TYPE
	aceDeny  aceType = 1 // ACCESS_DENIED_ACE_TYPE
)

// SIDs that may appear in a private file's ACL besides its user: the
// system account and the administrators hold privileges that bypass any
// ACL (backup, take ownership), as root does on Unix, so an entry for them
// opens nothing. Windows puts both in a profile folder's default ACL.
const (
	sidLocalSystem    = "S-1-5-18"
	sidAdministrators = "S-1-5-32-544"
)

// ace is one access control entry: an allow or deny of Mask for SID.
type ace struct {
	Type aceType
	SID  string
	Mask uint32
}

// securityInfo is what the check needs of a file's security descriptor.
type securityInfo struct {
	Owner string
	// NoDACL means the file has no DACL at all or a NULL one: Windows then
	// lets everyone do everything.
	NoDACL bool
	ACEs   []ace
}

// principal is the user kip runs as: the SID of the user, and the owner
// SID its process token gives new files (the same SID, or the
// Administrators group for an elevated administrator).
type principal struct {
	User, DefaultOwner string
}

// checkACL accepts only a file that its user owns and that no other
// principal may open in any way: the ACL equivalent of the owner check and
// `mode & 0o077 == 0`. Deny entries only take access away, so they are
// fine; any entry type other than allow or deny (object, callback or audit
// entries) is refused, because kip does not know what it grants.
func checkACL(s securityInfo, me principal) error {
	if err := checkOwner(s.Owner, me); err != nil {
		return err
	}
	if s.NoDACL {
		return errors.New("open to everyone (it has no access control list)")
	}
	for _, e := range s.ACEs {
		switch {
		case e.Type == aceDeny, e.Mask == 0:
		case e.Type != aceAllow:
			return fmt.Errorf("its access control list has an entry of type %d, which kip does not accept in a private file", e.Type)
		case e.SID == me.User, e.SID == me.DefaultOwner, e.SID == sidLocalSystem, e.SID == sidAdministrators:
		default:
			return fmt.Errorf("open to other users (its access control list allows %s)", e.SID)
		}
	}
	return nil
}

// checkOwner accepts a file owned by the user or by the owner its process
// token gives new files.
func checkOwner(owner string, me principal) error {
	if owner != me.User && owner != me.DefaultOwner {
		return fmt.Errorf("owned by another user (%s)", owner)
	}
	return nil
}

// privateSDDL is the DACL kip gives its cache directory and files, in the
// security descriptor language: protected (nothing inherited from the
// folder above), letting the user alone do everything. A directory's entry
// is inherited by the files created in it, so they are private from their
// first byte.
func privateSDDL(userSID string, dir bool) string {
	inherit := ""
	if dir {
		inherit = "OICI"
	}
	return fmt.Sprintf("D:P(A;%s;FA;;;%s)", inherit, userSID)
}
