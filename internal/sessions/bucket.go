package sessions

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// BucketConfig says where finished recordings are uploaded.
type BucketConfig struct {
	// URL is s3://BUCKET[/PREFIX].
	URL string
	// Endpoint is the S3 server, https://host[:port]; empty means AWS.
	Endpoint string
	// Region is the bucket's region; empty lets the client find it.
	Region string
	// CAFile, when set, is the PEM bundle that verifies Endpoint's
	// certificate instead of the system's roots.
	CAFile string
}

// awsEndpoint is S3 when no endpoint is given.
const awsEndpoint = "https://s3.amazonaws.com"

// ParseBucketURL splits s3://BUCKET[/PREFIX] into the bucket and the
// prefix without its slashes at either end.
func ParseBucketURL(raw string) (bucket, prefix string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", fmt.Errorf("the bucket %q is not a URL: %w", raw, err)
	}
	if u.Scheme != "s3" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("the bucket %q is not of the form s3://BUCKET[/PREFIX]", raw)
	}
	prefix = strings.Trim(u.Path, "/")
	for _, seg := range strings.Split(prefix, "/") {
		// A prefix of "." or ".." segments reads differently to S3 and
		// to the tools that mirror the bucket to disk.
		if prefix != "" && (seg == "" || seg == "." || seg == "..") {
			return "", "", fmt.Errorf("the bucket %q has a prefix with an empty, . or .. segment", raw)
		}
	}
	return u.Host, prefix, nil
}

// ParseEndpoint checks an S3 endpoint: http(s)://host[:port], nothing
// more. Empty means AWS.
func ParseEndpoint(raw string) (*url.URL, error) {
	if raw == "" {
		raw = awsEndpoint
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("the endpoint %q is not a URL: %w", raw, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("the endpoint %q is not of the form https://host[:port]", raw)
	}
	return u, nil
}

// Bucket is an S3 bucket and a prefix in it, holding recordings as
// PREFIX/<yyyy-mm-dd>/<session>.cast and their public keys as
// PREFIX/keys/<fingerprint>.pub.
type Bucket struct {
	client *minio.Client
	name   string
	prefix string
	// where names the bucket in log lines and errors.
	where string
}

// NewBucket returns the bucket cfg names, with credentials from the
// usual chain: AWS_ACCESS_KEY_ID and friends, the AWS shared files, then
// the instance's or pod's IAM role (EC2, ECS, EKS web identity). It does
// not contact the bucket.
func NewBucket(cfg BucketConfig) (*Bucket, error) {
	name, prefix, err := ParseBucketURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	endpoint, err := ParseEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	transport, err := bucketTransport(cfg.CAFile)
	if err != nil {
		return nil, err
	}
	creds := credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{},
		&credentials.FileAWSCredentials{},
		&credentials.IAM{Client: &http.Client{Transport: transport}},
	})
	client, err := minio.New(endpoint.Host, &minio.Options{
		Creds: creds, Secure: endpoint.Scheme == "https", Region: cfg.Region, Transport: transport,
		// Uploads retry on a schedule of their own, with the failure
		// counted each time; minio-go's retries would hide it.
		MaxRetries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("setting up the client of %s: %w", cfg.Endpoint, err)
	}
	return &Bucket{client: client, name: name, prefix: prefix, where: cfg.URL}, nil
}

// bucketTransport is the HTTP transport to the S3 endpoint, trusting
// caFile's certificates instead of the system's when given.
func bucketTransport(caFile string) (*http.Transport, error) {
	t, err := minio.DefaultTransport(true)
	if err != nil {
		return nil, err
	}
	if caFile == "" {
		return t, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading the bucket's CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("the bucket's CA file %s holds no PEM certificate", caFile)
	}
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return t, nil
}

// String names the bucket as the operator gave it.
func (b *Bucket) String() string { return b.where }

// key is the object name of rel, a path relative to the prefix.
func (b *Bucket) key(rel string) string { return path.Join(b.prefix, rel) }

// put uploads size bytes of body as rel under the prefix. The upload is
// whole or absent: S3 makes an object visible only once all of it arrived.
func (b *Bucket) put(ctx context.Context, rel string, body io.Reader, size int64, contentType string) error {
	key := b.key(rel)
	_, err := b.client.PutObject(ctx, b.name, key, body, size, minio.PutObjectOptions{ContentType: contentType})
	if err != nil {
		return fmt.Errorf("uploading %s to %s: %w", key, b.where, err)
	}
	return nil
}

// probeTimeout bounds a reachability check of the bucket.
const probeTimeout = 5 * time.Second

// probe checks that the bucket exists and kip's credentials reach it.
func (b *Bucket) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	ok, err := b.client.BucketExists(ctx, b.name)
	if err != nil {
		return fmt.Errorf("reaching the recordings' bucket %s: %w", b.where, err)
	}
	if !ok {
		return fmt.Errorf("the recordings' bucket %s does not exist", b.where)
	}
	return nil
}

// errNoSuchKey tells a missing object apart from a failure to read it.
func isNoSuchKey(err error) bool {
	var resp minio.ErrorResponse
	return errors.As(err, &resp) && (resp.Code == minio.NoSuchKey || resp.StatusCode == http.StatusNotFound)
}
