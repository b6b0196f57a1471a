package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kip-proxy/kip/internal/options"
	"github.com/kip-proxy/kip/internal/recording"
	"github.com/kip-proxy/kip/internal/sessions"
	"github.com/kip-proxy/kip/internal/sessionsapi"
)

func newSessions() *cobra.Command {
	o := &options.Sessions{}
	cmd := &cobra.Command{
		Use:   "sessions",
		Short: "List, replay and verify recorded exec, attach and port-forward sessions",
		Long: `kip sessions reads the sessions kip recorded, from kip itself with the
current kubeconfig (the upstream's RBAC on sessions.kip.dev sessions and
sessions/recording decides what you may read), or with --dir from a
recording directory directly.`,
	}
	o.AddFlags(cmd.PersistentFlags())
	cmd.AddCommand(newSessionsList(o), newSessionsPlay(o), newSessionsVerify(o))
	return cmd
}

// sessionSource is where o says to read: the directory, or kip, in the namespace
// o names (every namespace for a directory unless -n is given).
func sessionSource(o *options.Sessions) (sessionsapi.Source, string, error) {
	if err := o.Validate(); err != nil {
		return nil, "", err
	}
	if o.Dir != "" {
		return sessionsapi.Local{Store: sessions.NewDirStore(o.Dir)}, o.Namespace, nil
	}
	cfg, err := o.RESTConfig()
	if err != nil {
		return nil, "", err
	}
	client, err := sessionsapi.NewClient(cfg)
	if err != nil {
		return nil, "", err
	}
	ns, err := o.RemoteNamespace()
	if err != nil {
		return nil, "", err
	}
	return sessionsapi.Remote{Client: client}, ns, nil
}

func newSessionsList(shared *options.Sessions) *cobra.Command {
	o := &options.SessionsList{}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List recorded sessions, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(shared.Dir); err != nil {
				return err
			}
			src, ns, err := sessionSource(shared)
			if err != nil {
				return err
			}
			ctx, stop := interruptible(cmd.Context())
			defer stop()
			items, err := src.List(ctx, ns, o.Filter(time.Now()))
			if err != nil {
				return err
			}
			return sessionsapi.PrintList(cmd.OutOrStdout(), items, o.Output)
		},
	}
	o.AddFlags(cmd.Flags(), &shared.AllNamespaces)
	return cmd
}

func newSessionsPlay(shared *options.Sessions) *cobra.Command {
	o := options.NewSessionsPlay()
	cmd := &cobra.Command{
		Use:   "play ID",
		Short: "Replay a recorded session in the terminal, as it happened",
		Long: `kip sessions play writes what the session's container wrote, at the pace it
wrote it: stdout to stdout and stderr to stderr (a TTY session's terminal
output all to stdout, as the terminal showed it). --raw writes the
recording itself, an asciicast v2 file any asciinema player can replay.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			src, ns, err := sessionSource(shared)
			if err != nil {
				return err
			}
			ctx, stop := interruptible(cmd.Context())
			defer stop()
			rc, err := src.Recording(ctx, ns, args[0])
			if err != nil {
				return err
			}
			defer func() { _ = rc.Close() }()
			if o.Raw {
				_, err = io.Copy(cmd.OutOrStdout(), rc)
				return err
			}
			return recording.Play(ctx, rc, cmd.OutOrStdout(), cmd.ErrOrStderr(),
				recording.PlayOptions{Speed: o.Speed, MaxIdle: o.MaxIdle})
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func newSessionsVerify(shared *options.Sessions) *cobra.Command {
	o := &options.SessionsVerify{}
	cmd := &cobra.Command{
		Use:   "verify ID|FILE",
		Short: "Check that a recording is whole and sealed by kip's key",
		Long: `kip sessions verify checks a recording's seal: the SHA-256 of everything
before it, signed by kip's recording key. An edited, truncated or extended
recording fails.

A FILE (a path, or a name ending in .cast) is verified with --key, or else
with keys/<fingerprint>.pub of its recording directory, the key kip wrote
there. That key is only as trustworthy as the directory: whoever could
change the recording could change the key beside it, so give --key with a
copy of kip's public key kept elsewhere when it matters.

An ID is read from kip (or from --dir). A recording read from kip is
verified only with --key: kip does not vouch for its own recordings.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := interruptible(cmd.Context())
			defer stop()
			return verifySession(ctx, cmd.OutOrStdout(), shared, o, args[0])
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// isFileArg says whether verify's argument names a file rather than a
// session ID: an ID is a plain name, never a path or a .cast file.
func isFileArg(arg string) bool {
	return strings.HasSuffix(arg, ".cast") || strings.ContainsAny(arg, `/\`) || !sessions.ValidID(arg)
}

func verifySession(ctx context.Context, out io.Writer, shared *options.Sessions, o *options.SessionsVerify, arg string) error {
	var (
		data    io.ReadCloser
		keyFile = o.Key
		what    = "session " + arg
		err     error
	)
	switch {
	case isFileArg(arg):
		what = arg
		data, keyFile, err = openLocal(arg, filepath.Dir(filepath.Dir(arg)), keyFile)
	case shared.Dir != "":
		data, keyFile, err = openInDir(ctx, shared.Dir, arg, keyFile)
	default:
		if keyFile == "" {
			return errors.New("verifying a recording read from kip needs --key FILE, a copy of kip's recording public key that you trust " +
				"(kip writes it to keys/<fingerprint>.pub of its recording directory): a key fetched from kip would prove nothing about kip's own recordings")
		}
		var src sessionsapi.Source
		var ns string
		if src, ns, err = sessionSource(shared); err == nil {
			data, err = src.Recording(ctx, ns, arg)
		}
	}
	if err != nil {
		return err
	}
	defer func() { _ = data.Close() }()
	pub, err := sessions.ReadPublicKey(keyFile)
	if err != nil {
		return fmt.Errorf("reading the key to verify with: %w", err)
	}
	if err := recording.Verify(data, pub); err != nil {
		return fmt.Errorf("%s FAILED verification with the key %s: %w", what, keyFile, err)
	}
	_, err = fmt.Fprintf(out, "%s is whole and sealed by the key %s\n", what, keyFile)
	return err
}

// openLocal opens the recording file path and names the key that verifies
// it: keyFile when given, else the one root/keys holds for its seal.
func openLocal(path, root, keyFile string) (io.ReadCloser, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("opening the recording: %w", err)
	}
	if keyFile != "" {
		return f, keyFile, nil
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, "", err
	}
	info, err := recording.ReadInfo(f, fi.Size())
	if err == nil && !info.Sealed {
		err = recording.ErrUnsealed
	}
	if err == nil {
		keyFile, err = sessions.KeyFileFor(root, info.SealKey)
	}
	if err != nil {
		_ = f.Close()
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	return f, keyFile, nil
}

// openInDir opens session id of the recording directory dir.
func openInDir(ctx context.Context, dir, id, keyFile string) (io.ReadCloser, string, error) {
	rc, sum, err := sessions.NewDirStore(dir).Open(ctx, id)
	if errors.Is(err, sessions.ErrNotFound) {
		return nil, "", fmt.Errorf("no recording of session %q in %s", id, dir)
	}
	if err != nil {
		return nil, "", err
	}
	if keyFile != "" {
		return rc, keyFile, nil
	}
	if !sum.Sealed {
		_ = rc.Close()
		return nil, "", fmt.Errorf("session %s: %w", id, recording.ErrUnsealed)
	}
	keyFile, err = sessions.KeyFileFor(dir, sum.SealKey)
	if err != nil {
		_ = rc.Close()
		return nil, "", err
	}
	return rc, keyFile, nil
}
