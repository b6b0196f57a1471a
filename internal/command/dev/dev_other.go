//go:build !linux

package dev

import (
	"runtime"

	"github.com/spf13/cobra"
)

// New keeps `kip dev` in the command list where it cannot run, so that
// a user who reads the README on a laptop learns why instead of meeting an
// unknown command.
func New() *cobra.Command {
	return &cobra.Command{
		Use:                "dev",
		Short:              "Run kip in front of a local throwaway control plane (Linux only)",
		DisableFlagParsing: true,
		RunE: func(*cobra.Command, []string) error {
			return devNeedsLinux(runtime.GOOS, runtime.GOARCH)
		},
	}
}
