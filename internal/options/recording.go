package options

import (
	"crypto"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/kip-proxy/kip/internal/server"
	"github.com/kip-proxy/kip/internal/sessions"
)

// Recording records every exec and attach session kip relays.
type Recording struct {
	// Dir holds the recordings; empty turns recording off.
	Dir string
	// KeyFile is the PEM private key that seals recordings; when empty,
	// kip generates one at start and writes its public half into Dir.
	KeyFile string
}

// AddFlags registers the recording flags on fs.
func (o *Recording) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Dir, "recording-dir", o.Dir,
		"Directory where every exec and attach session is recorded, as DIR/<yyyy-mm-dd>/<session>.cast (asciicast v2, sealed with a signature), with the public key that verifies them in DIR/keys. Off when empty.")
	fs.StringVar(&o.KeyFile, "recording-key-file", o.KeyFile,
		"PEM Ed25519 or ECDSA private key that seals recordings. When empty, kip generates an Ed25519 key at start; its public key is written to --recording-dir/keys either way.")
}

// Validate reports every invalid recording option.
func (o *Recording) Validate() []error {
	var errs []error
	if o.Dir == "" {
		if o.KeyFile != "" {
			errs = append(errs, errors.New("--recording-key-file seals recordings, and --recording-dir is empty: give --recording-dir to record sessions"))
		}
		return errs
	}
	if fi, err := os.Stat(o.Dir); err == nil && !fi.IsDir() {
		errs = append(errs, fmt.Errorf("--recording-dir %s is a file, not a directory", o.Dir))
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("--recording-dir: %w", err))
	}
	if o.KeyFile != "" {
		if _, err := sessions.LoadKey(o.KeyFile); err != nil {
			errs = append(errs, fmt.Errorf("--recording-key-file: %w", err))
		}
	}
	return errs
}

// ApplyTo sets the server's recorder from the options: the directory,
// created if missing, and the key, generated if none is given.
func (o *Recording) ApplyTo(cfg *server.Config) error {
	if o.Dir == "" {
		return nil
	}
	load := sessions.GenerateKey
	if o.KeyFile != "" {
		load = func() (crypto.Signer, error) { return sessions.LoadKey(o.KeyFile) }
	}
	key, err := load()
	if err != nil {
		return err
	}
	dir, err := sessions.NewDir(o.Dir, key)
	if err != nil {
		return err
	}
	klog.InfoS("Recording exec and attach sessions", "dir", o.Dir, "publicKey", dir.PublicKeyFile())
	cfg.Recorder = dir
	cfg.Sessions = sessions.NewDirStore(o.Dir)
	return nil
}
