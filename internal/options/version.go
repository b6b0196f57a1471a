package options

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/kip-proxy/kip/internal/version"
)

// Version is the option set of `kip version`.
type Version struct {
	Output string
}

// NewVersion returns the defaults.
func NewVersion() *Version { return &Version{} }

// AddFlags registers every flag on fs.
func (o *Version) AddFlags(fs *pflag.FlagSet) {
	fs.StringVarP(&o.Output, "output", "o", o.Output, "Output format: empty for text, or json.")
}

// Validate refuses an unknown output format.
func (o *Version) Validate() error {
	if o.Output != "" && o.Output != "json" {
		return fmt.Errorf("--output %q: want json, or nothing for text", o.Output)
	}
	return nil
}

// Print writes v in the chosen format.
func (o *Version) Print(w io.Writer, v version.Info) error {
	if o.Output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	_, err := fmt.Fprintf(w, "kip %s\ncommit: %s\ngo: %s %s\n", v.Version, v.Commit, v.GoVersion, v.Platform)
	return err
}
