//go:build linux || darwin || freebsd || netbsd || openbsd

package integration

import "golang.org/x/sys/unix"

// echoing reports whether the terminal at fd echoes what is typed, which
// a program that took it raw has turned off.
func echoing(fd int) (bool, error) {
	tio, err := unix.IoctlGetTermios(fd, getTermios)
	if err != nil {
		return false, err
	}
	return tio.Lflag&unix.ECHO != 0, nil
}
