//go:build !unix && !windows

package cache

import (
	"errors"
	"os"
)

// errNoPrivacy: kip keeps no credentials where it cannot tell who may read
// them.
var errNoPrivacy = errors.New("kip cannot check who may read files on this system, so it keeps no login cache here")

func ownerCheck(string, os.FileInfo) error   { return errNoPrivacy }
func privacyCheck(string, os.FileInfo) error { return errNoPrivacy }
func makePrivate(string, bool) error         { return errNoPrivacy }
