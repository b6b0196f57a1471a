package signer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/klog/v2"
)

// expiryWarningFraction: kip warns once a file CA has less than a fifth of
// its lifetime left; files are rotated by a person, who needs notice.
const expiryWarningFraction = 5

var errRotateFiles = errors.New("kip's signer CA comes from files: rotate it by replacing --signer-ca-cert-file and --signer-ca-key-file")

// NewFromFiles returns a CA read from a PEM certificate and key, reloaded
// whenever they change. The first certificate in certFile is the signer.
// When the files change to another CA, the previous one stays trusted, in
// memory only, for its window; after a restart only the current one is.
func NewFromFiles(certFile, keyFile string, opts Options) (*CA, error) {
	opts, err := opts.complete()
	if err != nil {
		return nil, err
	}
	// The upstream file watcher checks that the key matches and retries a
	// half-written pair; kip adds its CA checks on top.
	content, err := dynamiccertificates.NewDynamicServingContentFromFiles("kip-signer-ca", certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("reading the signer CA from --signer-ca-cert-file %q and --signer-ca-key-file %q: %w", certFile, keyFile, err)
	}
	src := &fileSource{content: content}
	c := &CA{name: "kip-signer-ca::file::" + certFile + "::" + keyFile, opts: opts, src: src}
	src.ca = c
	if err := src.load(); err != nil {
		return nil, fmt.Errorf("the signer CA in %q and %q cannot be used: %w", certFile, keyFile, err)
	}
	content.AddListener(src)
	return c, nil
}

// fileSource follows a cert/key pair on disk.
type fileSource struct {
	ca      *CA
	content *dynamiccertificates.DynamicCertKeyPairContent
	// warned remembers the CA already warned about, so the warning is
	// logged once per CA rather than every check.
	mu     sync.Mutex
	warned []byte
}

// Enqueue is called by the file watcher whenever the pair on disk changed
// and still forms a valid pair.
func (s *fileSource) Enqueue() {
	if err := s.load(); err != nil {
		klog.ErrorS(err, "Keeping the previous signer CA: the new files cannot be used", "name", s.ca.name)
	}
}

// load switches to the pair the watcher holds if it is a usable CA.
func (s *fileSource) load() error {
	certPEM, keyPEM := s.content.CurrentCertKeyContent()
	now := s.ca.opts.Clock.Now()
	next, err := parseSigningCA(certPEM, keyPEM, now)
	if err != nil {
		return err
	}
	s.ca.update(func(t *trust) *trust { return t.withSigning(next, now, s.ca.opts.MaxCertificateTTL) })
	return nil
}

func (s *fileSource) sync(ctx context.Context) error {
	// RunOnce notifies the listener (Enqueue) when the content changed.
	return s.content.RunOnce(ctx)
}

func (s *fileSource) watch(ctx context.Context) {
	s.content.Run(ctx, 1)
}

// maintain warns once per CA when its expiry comes close: only the
// operator can rotate files.
func (s *fileSource) maintain(context.Context) {
	t := s.ca.state.Load()
	c := t.signing.cert
	left := c.NotAfter.Sub(s.ca.opts.Clock.Now())
	s.mu.Lock()
	defer s.mu.Unlock()
	if left < c.NotAfter.Sub(c.NotBefore)/expiryWarningFraction && string(s.warned) != string(c.Raw) {
		s.warned = c.Raw
		klog.InfoS("Warning: kip's signer CA expires soon; replace --signer-ca-cert-file and --signer-ca-key-file",
			"name", s.ca.name, "notAfter", c.NotAfter.UTC(), "left", left.Round(time.Minute))
	}
}

func (s *fileSource) rotate(context.Context, bool) error {
	return errRotateFiles
}
