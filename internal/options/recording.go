package options

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
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
	// Required refuses sessions while recordings cannot be kept.
	Required bool
	// Bucket, s3://BUCKET[/PREFIX], receives finished recordings.
	Bucket string
	// BucketEndpoint is the S3 server; empty means AWS.
	BucketEndpoint string
	// BucketRegion is the bucket's region.
	BucketRegion string
	// BucketCAFile verifies BucketEndpoint's certificate.
	BucketCAFile string
}

// AddFlags registers the recording flags on fs.
func (o *Recording) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Dir, "recording-dir", o.Dir,
		"Directory where every exec and attach session is recorded, as DIR/<yyyy-mm-dd>/<session>.cast (asciicast v2, sealed with a signature), with the public key that verifies them in DIR/keys. Off when empty.")
	fs.StringVar(&o.KeyFile, "recording-key-file", o.KeyFile,
		"PEM Ed25519 or ECDSA private key that seals recordings. When empty, kip generates an Ed25519 key at start; its public key is written to --recording-dir/keys either way.")
	fs.BoolVar(&o.Required, "recording-required", o.Required,
		"Refuse exec, attach and port-forward with 503 while recordings cannot be kept (--recording-dir full or not writable, --recording-bucket unreachable), instead of running them unrecorded.")
	fs.StringVar(&o.Bucket, "recording-bucket", o.Bucket,
		"S3 bucket, s3://BUCKET[/PREFIX], that each finished recording is uploaded to, as PREFIX/<yyyy-mm-dd>/<session>.cast with the public keys in PREFIX/keys; a recording leaves --recording-dir once uploaded, and recordings found there at start are uploaded too, so each kip needs a --recording-dir of its own. Credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, the AWS shared files, or the pod's IAM role (IRSA).")
	fs.StringVar(&o.BucketEndpoint, "recording-bucket-endpoint", o.BucketEndpoint,
		"URL of the S3-compatible server, https://host[:port]. Empty means AWS S3.")
	fs.StringVar(&o.BucketRegion, "recording-bucket-region", o.BucketRegion,
		"Region of --recording-bucket. Empty asks the server.")
	fs.StringVar(&o.BucketCAFile, "recording-bucket-ca-file", o.BucketCAFile,
		"PEM file of the CAs that verify --recording-bucket-endpoint's certificate, instead of the system's.")
}

// Validate reports every invalid recording option.
func (o *Recording) Validate() []error {
	var errs []error
	if o.Dir == "" {
		for _, f := range []struct {
			what string
			set  bool
		}{
			{"--recording-key-file seals recordings", o.KeyFile != ""},
			{"--recording-required refuses sessions that cannot be recorded", o.Required},
			{"--recording-bucket uploads recordings from the directory", o.Bucket != ""},
		} {
			if f.set {
				errs = append(errs, fmt.Errorf("%s, and --recording-dir is empty: give --recording-dir to record sessions", f.what))
			}
		}
		return append(errs, o.validateBucket()...)
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
	return append(errs, o.validateBucket()...)
}

// validateBucket checks the bucket flags: each detail of the bucket needs
// the bucket, and recordings cross the network encrypted.
func (o *Recording) validateBucket() []error {
	if o.Bucket == "" {
		var errs []error
		for _, f := range [][2]string{
			{"--recording-bucket-endpoint", o.BucketEndpoint}, {"--recording-bucket-region", o.BucketRegion},
			{"--recording-bucket-ca-file", o.BucketCAFile},
		} {
			if f[1] != "" {
				errs = append(errs, fmt.Errorf("%s describes the bucket, and --recording-bucket is empty: give --recording-bucket=s3://BUCKET[/PREFIX]", f[0]))
			}
		}
		return errs
	}
	var errs []error
	if _, _, err := sessions.ParseBucketURL(o.Bucket); err != nil {
		errs = append(errs, fmt.Errorf("--recording-bucket: %w", err))
	}
	endpoint, err := sessions.ParseEndpoint(o.BucketEndpoint)
	if err != nil {
		return append(errs, fmt.Errorf("--recording-bucket-endpoint: %w", err))
	}
	if endpoint.Scheme == "http" {
		// Recordings hold everything typed in a terminal, passwords
		// included: only a server on this host may receive them in clear.
		if ip := net.ParseIP(endpoint.Hostname()); ip == nil || !ip.IsLoopback() {
			errs = append(errs, fmt.Errorf("--recording-bucket-endpoint %s is plain HTTP, which would send recordings across the network unencrypted: use https://", o.BucketEndpoint))
		}
		if o.BucketCAFile != "" {
			errs = append(errs, errors.New("--recording-bucket-ca-file verifies an https:// endpoint, and --recording-bucket-endpoint is plain HTTP"))
		}
	}
	if o.BucketCAFile != "" {
		if data, err := os.ReadFile(o.BucketCAFile); err != nil {
			errs = append(errs, fmt.Errorf("--recording-bucket-ca-file: %w", err))
		} else if !x509.NewCertPool().AppendCertsFromPEM(data) {
			errs = append(errs, fmt.Errorf("--recording-bucket-ca-file %s holds no PEM certificate", o.BucketCAFile))
		}
	}
	return errs
}

// ApplyTo sets the server's recorder from the options: the directory,
// created if missing, the key, generated if none is given, and the
// uploads to the bucket, which run while kip serves. The recorder counts
// into cfg.Metrics, built here if the server has none yet.
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
	if cfg.Metrics == nil {
		cfg.Metrics = server.NewMetrics(cfg.Clusters)
	}
	opts := []sessions.Option{sessions.WithMetrics(cfg.Metrics.Recordings())}
	var bucket *sessions.Bucket
	if o.Bucket != "" {
		bucket, err = sessions.NewBucket(sessions.BucketConfig{
			URL: o.Bucket, Endpoint: o.BucketEndpoint, Region: o.BucketRegion, CAFile: o.BucketCAFile,
		})
		if err != nil {
			return err
		}
		opts = append(opts, sessions.WithBucket(bucket))
	}
	dir, err := sessions.NewDir(o.Dir, key, opts...)
	if err != nil {
		return err
	}
	klog.InfoS("Recording exec, attach and port-forward sessions", "dir", o.Dir, "publicKey", dir.PublicKeyFile(),
		"bucket", o.Bucket, "required", o.Required)
	cfg.Recorder = dir
	cfg.RecordingRequired = o.Required
	cfg.Background = append(cfg.Background, dir.Run)
	cfg.Sessions = sessions.NewDirStore(o.Dir)
	if bucket != nil {
		cfg.Sessions = sessions.Merge(cfg.Sessions, sessions.NewBucketStore(bucket))
	}
	return nil
}
