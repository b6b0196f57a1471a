package dev

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// stopSignals returns a context that ends on the first SIGINT, SIGTERM or
// SIGHUP, or on a SIGPIPE once one of outs is a pipe that nobody reads any
// more. A second SIGINT or SIGTERM exits at once, saying so on log.
//
// SIGPIPE is the reason this is not genericapiserver.SetupSignalContext:
// under `kip dev | tee log`, Ctrl-C ends tee as well, and Go kills a
// program whose write to a broken stdout raises SIGPIPE, so kip dev died
// on its "stopping" line and left its folders and processes behind.
// Catching SIGPIPE turns such writes into EPIPE errors. Sockets raise
// SIGPIPE too (a client that hung up), so only a broken output counts.
func stopSignals(parent context.Context, log io.Writer, outs ...*os.File) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	done := make(chan struct{})
	go func() {
		stopping := false
		for {
			select {
			case <-done:
				return
			case sig := <-sigs:
				switch {
				case sig == syscall.SIGPIPE && !anyBrokenPipe(outs):
					continue
				case stopping && sig != syscall.SIGPIPE && sig != syscall.SIGHUP:
					_, _ = fmt.Fprintf(log, "second %v: exiting without cleaning up\n", sig)
					os.Exit(1)
				}
				stopping = true
				cancel()
			}
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}

func anyBrokenPipe(outs []*os.File) bool {
	for _, f := range outs {
		if brokenPipe(f) {
			return true
		}
	}
	return false
}

// brokenPipe reports whether f is a pipe whose reading end is closed:
// poll says POLLERR for exactly that, and never for a terminal or a file.
func brokenPipe(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	broken := false
	_ = rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		n, err := unix.Poll(fds, 0)
		broken = err == nil && n > 0 && fds[0].Revents&unix.POLLERR != 0
	})
	return broken
}
