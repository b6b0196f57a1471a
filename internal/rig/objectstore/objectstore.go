package objectstore

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/kip-proxy/kip/internal/rig/binaries"
	"github.com/kip-proxy/kip/internal/rig/childproc"
	"github.com/kip-proxy/kip/internal/rig/localcluster"
)

// The fixed credentials of the server's root account. They guard nothing
// but a temporary directory on loopback.
const (
	AccessKey = "kip-test-access"
	SecretKey = "kip-test-secret-0123456789"
	// Region is what versitygw answers for every bucket.
	Region = "us-east-1"
)

// startTimeout bounds the wait for versitygw to answer; it starts in well
// under a second.
const startTimeout = 30 * time.Second

// Server is a running (or stopped) versitygw and the bucket it was
// started with.
type Server struct {
	// Endpoint is the server's URL, http://127.0.0.1:<port>.
	Endpoint string
	// Bucket exists from Start on.
	Bucket string

	bin, dataDir, logPath string
	addr                  string

	mu   sync.Mutex
	proc *childproc.Process // nil while stopped
	last *childproc.Process // the latest started, for its log
}

// Start runs the versitygw binary bin on a free loopback port, serving
// objects from a directory under workDir, and creates bucket. Stop it when
// done.
func Start(ctx context.Context, bin, workDir, bucket string) (*Server, error) {
	ports, err := localcluster.FreePorts(1)
	if err != nil {
		return nil, err
	}
	s := &Server{
		Bucket: bucket, bin: bin,
		dataDir: filepath.Join(workDir, "objects"), logPath: filepath.Join(workDir, "versitygw.log"),
		addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])),
	}
	s.Endpoint = "http://" + s.addr
	if err := os.MkdirAll(s.dataDir, 0o700); err != nil {
		return nil, err
	}
	if err := s.Restart(ctx); err != nil {
		return nil, err
	}
	client, err := s.Client()
	if err != nil {
		_ = s.Stop()
		return nil, err
	}
	if err := client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: Region}); err != nil {
		_ = s.Stop()
		return nil, fmt.Errorf("creating bucket %s in versitygw: %w", bucket, err)
	}
	return s, nil
}

// Restart starts the server again after Stop, on the same port and with
// the same objects, and waits until it answers. It does nothing while the
// server runs.
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return nil
	}
	args := []string{"--port", s.addr, "--quiet", "posix", s.dataDir}
	// The root account's keys go in the environment rather than the
	// command line, where any user of the machine could read them.
	env := []string{"ROOT_ACCESS_KEY=" + AccessKey, "ROOT_SECRET_KEY=" + SecretKey, "VGW_REGION=" + Region}
	proc, err := childproc.Start("versitygw", s.bin, args, env, s.logPath)
	if err != nil {
		return err
	}
	if err := proc.WaitReady(ctx, startTimeout, s.answers); err != nil {
		_ = proc.Stop(5 * time.Second)
		return err
	}
	s.proc, s.last = proc, proc
	return nil
}

// answers succeeds once the server gives any HTTP answer: an anonymous
// request is refused, which is enough to know it listens and serves.
func (s *Server) answers(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint+"/", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// Stop ends the server, keeping its objects for Restart. The port is
// then refused, as an unreachable bucket would be.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return nil
	}
	err := s.proc.Stop(5 * time.Second)
	s.proc = nil
	return err
}

// Client is an S3 client of the server with the root account's keys.
func (s *Server) Client() (*minio.Client, error) {
	return minio.New(s.addr, &minio.Options{
		Creds: credentials.NewStaticV4(AccessKey, SecretKey, ""), Region: Region,
	})
}

// Env is the environment under which minio-go's credential chain finds
// the root account's keys, as kip finds them in a pod.
func Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + AccessKey, "AWS_SECRET_ACCESS_KEY=" + SecretKey}
}

// LogTail is the end of the server's log, for a failing test's message.
func (s *Server) LogTail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		return "versitygw never started"
	}
	return s.last.LogTail()
}

// StartForTest starts versitygw with bucket for a test, building it first
// if it is not cached (minutes, the first time), and stops it when the
// test ends.
func StartForTest(t testing.TB, bucket string) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bin, err := binaries.EnsureVersityGW(ctx, binaries.Options{Log: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(ctx, bin, t.TempDir(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	return s
}
