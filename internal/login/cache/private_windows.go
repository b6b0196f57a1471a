package cache

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/windows"
)

// ownerCheck is where the cache and its entries must belong to kip's user.
func ownerCheck(path string, _ os.FileInfo) error {
	s, me, err := security(path)
	if err != nil {
		return err
	}
	return checkOwner(s.Owner, me)
}

// privacyCheck refuses a file or directory that anyone but its user may open.
func privacyCheck(path string, _ os.FileInfo) error {
	s, me, err := security(path)
	if err != nil {
		return err
	}
	return checkACL(s, me)
}

// makePrivate replaces path's DACL with one for the user alone.
func makePrivate(path string, dir bool) error {
	me, err := currentPrincipal()
	if err != nil {
		return err
	}
	sd, err := windows.SecurityDescriptorFromString(privateSDDL(me.User, dir))
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

func security(path string) (securityInfo, principal, error) {
	me, err := currentPrincipal()
	if err != nil {
		return securityInfo{}, principal{}, err
	}
	s, err := readSecurity(path)
	return s, me, err
}

// tokenOwner is TOKEN_OWNER, which x/sys/windows does not declare.
type tokenOwner struct {
	Owner *windows.SID
}

// currentPrincipal reads the user and default owner of kip's process token.
func currentPrincipal() (principal, error) {
	tok := windows.GetCurrentProcessToken()
	user, err := tok.GetTokenUser()
	if err != nil {
		return principal{}, fmt.Errorf("reading the current user: %w", err)
	}
	me := principal{User: user.User.Sid.String(), DefaultOwner: user.User.Sid.String()}
	var n uint32
	_ = windows.GetTokenInformation(tok, windows.TokenOwner, nil, 0, &n)
	if n == 0 {
		return me, nil
	}
	buf := make([]byte, n)
	if err := windows.GetTokenInformation(tok, windows.TokenOwner, &buf[0], n, &n); err == nil {
		me.DefaultOwner = (*tokenOwner)(unsafe.Pointer(&buf[0])).Owner.String()
	}
	return me, nil
}

// readSecurity reads path's owner and DACL into the form checkACL judges.
func readSecurity(path string) (securityInfo, error) {
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return securityInfo{}, fmt.Errorf("reading the access control list: %w", err)
	}
	owner, _, err := sd.Owner()
	if err != nil || owner == nil {
		return securityInfo{}, fmt.Errorf("reading the owner: %w", err)
	}
	s := securityInfo{Owner: owner.String()}
	dacl, _, err := sd.DACL()
	if errors.Is(err, windows.ERROR_OBJECT_NOT_FOUND) || (err == nil && dacl == nil) {
		s.NoDACL = true
		return s, nil
	}
	if err != nil {
		return securityInfo{}, fmt.Errorf("reading the access control list: %w", err)
	}
	for i := range uint32(dacl.AceCount) {
		var e *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &e); err != nil {
			return securityInfo{}, fmt.Errorf("reading access control entry %d: %w", i, err)
		}
		entry := ace{Type: aceType(e.Header.AceType), Mask: uint32(e.Mask)}
		// Allow and deny entries end in the SID; other types are refused
		// by checkACL without looking at theirs.
		if entry.Type == aceAllow || entry.Type == aceDeny {
			entry.SID = (*windows.SID)(unsafe.Pointer(&e.SidStart)).String()
		}
		s.ACEs = append(s.ACEs, entry)
	}
	return s, nil
}
