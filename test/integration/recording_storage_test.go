package integration

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/kip-proxy/kip/internal/recording"
	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/localcluster"
	"github.com/kip-proxy/kip/internal/rig/objectstore"
	"github.com/kip-proxy/kip/internal/sessions"
)

// bucketPrefix is where the tests' kips upload, inside the bucket.
const bucketPrefix = "kip/recordings"

// TestRecordingStorageBucket proves that a real kubectl exec through a
// kip with --recording-bucket lands in a real S3 server (versitygw) as a
// sealed recording that verifies with the key kip uploaded beside it, and
// leaves the disk; that with the bucket down the session still works, the
// failed upload is counted and the recording kept; and that it is
// uploaded once the bucket is back.
func TestRecordingStorageBucket(t *testing.T) {
	s3 := startBucket(t)
	dir := t.TempDir()
	k := startStorageKip(t, "--recording-dir="+dir, "--recording-bucket=s3://"+s3.Bucket+"/"+bucketPrefix,
		"--recording-bucket-endpoint="+s3.Endpoint, "--recording-bucket-region="+objectstore.Region)
	ns, pod, kubeconfig := execTarget(t, k.url)
	client, err := s3.Client()
	if err != nil {
		t.Fatal(err)
	}
	store := bucketStore(t, s3)

	t.Run("uploaded and verified", func(t *testing.T) {
		mustExec(t, kubeconfig, ns, pod, "hello")
		key := newObject(t, client, s3.Bucket, nil)
		data := getObject(t, client, s3.Bucket, key)
		pub := uploadedKey(t, client, s3.Bucket, data)
		if err := recording.Verify(bytes.NewReader(data), pub); err != nil {
			t.Fatalf("the uploaded recording %s does not verify with the uploaded key: %v", key, err)
		}
		if !bytes.Contains(data, []byte(`"o", "hello\n"`)) && !bytes.Contains(data, []byte(`"o","hello\n"`)) {
			t.Errorf("the uploaded recording does not hold the command's output:\n%s", data)
		}
		harness.Eventually(t, 10*time.Second, func() error {
			if files := castFiles(t, dir); len(files) > 0 {
				return errorf("recordings still on disk after their upload: %v", files)
			}
			return nil
		})
		list, err := store.List(context.Background(), sessions.Filter{Namespace: ns, Pod: pod})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || !list[0].Sealed || list[0].Subresource != "exec" || list[0].Store != "bucket" {
			t.Fatalf("the bucket lists %+v, want one sealed exec", list)
		}
		rc, _, err := store.Open(context.Background(), list[0].SessionID)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = rc.Close() }()
		if got, _ := io.ReadAll(rc); !bytes.Equal(got, data) {
			t.Error("Open of the listed session read other bytes than were uploaded")
		}
	})

	t.Run("bucket down, then back", func(t *testing.T) {
		before := listKeys(t, client, s3.Bucket)
		if err := s3.Stop(); err != nil {
			t.Fatal(err)
		}
		k.waitFor(t, `kip_recording_storage_up`, map[string]string{"store": "bucket"}, func(v float64) bool { return v == 0 })
		failed := k.sample(t, "kip_recording_failures_total", map[string]string{"stage": "upload"})

		mustExec(t, kubeconfig, ns, pod, "while down")
		k.waitFor(t, "kip_recording_failures_total", map[string]string{"stage": "upload"}, func(v float64) bool { return v > failed })
		k.waitFor(t, "kip_recording_uploads_pending", nil, func(v float64) bool { return v == 1 })
		if files := castFiles(t, dir); len(files) != 1 {
			t.Fatalf("recordings on disk while the bucket is down: %v, want the one kept for later", files)
		}

		if err := s3.Restart(context.Background()); err != nil {
			t.Fatal(err)
		}
		key := newObject(t, client, s3.Bucket, before)
		if data := getObject(t, client, s3.Bucket, key); !bytes.Contains(data, []byte("while down")) {
			t.Errorf("the recording uploaded after the outage does not hold the command's output:\n%s", data)
		}
		k.waitFor(t, "kip_recording_uploads_pending", nil, func(v float64) bool { return v == 0 })
		k.waitFor(t, `kip_recording_storage_up`, map[string]string{"store": "bucket"}, func(v float64) bool { return v == 1 })
		if files := castFiles(t, dir); len(files) != 0 {
			t.Errorf("recordings still on disk once uploaded: %v", files)
		}
	})
}

// TestRecordingStorageRequired proves that a kip with --recording-required
// refuses kubectl exec with a 503 while the bucket is down, and that the
// upstream never hears of the refused session: neither kube-apiserver's
// audit log nor the node.
func TestRecordingStorageRequired(t *testing.T) {
	s3 := startBucket(t)
	k := startStorageKip(t, "--recording-dir="+t.TempDir(), "--recording-required",
		"--recording-bucket=s3://"+s3.Bucket+"/"+bucketPrefix,
		"--recording-bucket-endpoint="+s3.Endpoint, "--recording-bucket-region="+objectstore.Region)
	ns, pod, kubeconfig := execTarget(t, k.url)
	k.waitFor(t, `kip_recording_storage_up`, map[string]string{"store": "bucket"}, func(v float64) bool { return v == 1 })
	mustExec(t, kubeconfig, ns, pod, "allowed")

	refused := harness.UniqueName("refused")
	node := nodeFor(t, nodeModes[0])
	runPod(t, ns, node, podWith(refused))
	if err := s3.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s3.Restart(context.Background()) })
	k.waitFor(t, `kip_recording_storage_up`, map[string]string{"store": "bucket"}, func(v float64) bool { return v == 0 })

	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			res := kubectlEnv(t, kubeconfig, tr.env, "", "exec", "-n", ns, refused, "--", "echo", "unrecorded")
			if res.ExitCode == 0 || strings.Contains(res.Stdout, "unrecorded") {
				t.Fatalf("kubectl exec ran with the bucket down: exit %d, stdout %q", res.ExitCode, res.Stdout)
			}
			if !strings.Contains(res.Stderr, "must record this session") {
				t.Errorf("kubectl exec failed without kip's 503 Status: %s", res.Stderr)
			}
		})
	}
	if got := node.Stats(ns, refused); got.Exec != 0 {
		t.Errorf("the node served %d execs of the refused pod, want none", got.Exec)
	}
	if events := readAudit(t, auditLogPath, "/pods/"+refused+"/exec"); len(events) != 0 {
		t.Errorf("kube-apiserver audited %d requests for the refused exec, want none", len(events))
	}
}

// TestRecordingStorageFullDisk proves that a full recording directory
// leaves kubectl exec working, unrecorded, and is counted; and that a kip
// with --recording-required on it refuses exec with a 503 instead. It
// mounts a small tmpfs for the directory, which needs root.
func TestRecordingStorageFullDisk(t *testing.T) {
	dir := smallTmpfs(t)
	// Both kips write their keys at start, so they start before the fill.
	k := startStorageKip(t, "--recording-dir="+dir)
	required := startStorageKip(t, "--recording-dir="+dir, "--recording-required")
	ns, pod, kubeconfig := execTarget(t, k.url)
	fill(t, filepath.Join(dir, "filler"))
	k.waitFor(t, `kip_recording_storage_up`, map[string]string{"store": "dir"}, func(v float64) bool { return v == 0 })
	failedBefore := k.sample(t, "kip_recording_failures_total", nil)

	mustExec(t, kubeconfig, ns, pod, "on a full disk")
	k.waitFor(t, "kip_recording_failures_total", nil, func(v float64) bool { return v > failedBefore })

	// The same user, at the kip that must record.
	res := kubectl(t, kubeconfig, "--server="+required.url, "exec", "-n", ns, pod, "--", "echo", "unrecorded")
	if res.ExitCode == 0 || strings.Contains(res.Stdout, "unrecorded") {
		t.Fatalf("kubectl exec ran on a full disk with --recording-required: exit %d, stdout %q", res.ExitCode, res.Stdout)
	}
	if !strings.Contains(res.Stderr, "must record this session") {
		t.Errorf("kubectl exec failed without kip's 503 Status: %s", res.Stderr)
	}
}

// recordingKip is a kip in this process and its /metrics.
type recordingKip struct {
	url, metrics string
}

// startStorageKip starts a kip with the stack's flags and extra, and
// returns where it serves and its metrics.
func startStorageKip(t *testing.T, extra ...string) recordingKip {
	t.Helper()
	ports, err := localcluster.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	o := harness.ParseServe(t, append(stack.ServeArgs(stack.UpstreamKubeconfig, ports[0], ports[1]), extra...))
	url := harness.ServeInProcess(t, o, ports[0], ports[1])
	return recordingKip{url: url, metrics: "http://127.0.0.1:" + strconv.Itoa(ports[1]) + "/metrics"}
}

func (k recordingKip) sample(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := harness.ScrapeMetrics(ctx, http.DefaultClient, k.metrics)
	if err != nil {
		t.Fatal(err)
	}
	return m.Sample(name, labels)
}

// waitFor waits until the metric's value satisfies ok. kip checks its
// storage every 5 s.
func (k recordingKip) waitFor(t *testing.T, name string, labels map[string]string, ok func(float64) bool) {
	t.Helper()
	harness.Eventually(t, 45*time.Second, func() error {
		if v := k.sample(t, name, labels); !ok(v) {
			return fmt.Errorf("%s%v = %v", name, labels, v)
		}
		return nil
	})
}

// startBucket runs versitygw with a bucket, and gives kip its keys
// through the environment, as minio-go's credential chain reads them.
func startBucket(t *testing.T) *objectstore.Server {
	t.Helper()
	s3 := objectstore.StartForTest(t, "recordings")
	for _, kv := range objectstore.Env() {
		name, value, _ := strings.Cut(kv, "=")
		t.Setenv(name, value)
	}
	return s3
}

// bucketStore reads the bucket as kip's API does.
func bucketStore(t *testing.T, s3 *objectstore.Server) *sessions.BucketStore {
	t.Helper()
	b, err := sessions.NewBucket(sessions.BucketConfig{URL: "s3://" + s3.Bucket + "/" + bucketPrefix,
		Endpoint: s3.Endpoint, Region: objectstore.Region})
	if err != nil {
		t.Fatal(err)
	}
	return sessions.NewBucketStore(b)
}

// execTarget is a namespace with a running pod, and a user's kubeconfig
// through the kip at url that may exec into it.
func execTarget(t *testing.T, url string) (ns, pod, kubeconfig string) {
	t.Helper()
	ns = createNamespace(t)
	user := harness.UniqueName("stored")
	grant(t, ns, userSubject(user), streamingRules...)
	kubeconfig = kubeconfigAt(t, url, user)
	waitCanCreate(t, kubeconfig, ns, "exec")
	pod = harness.UniqueName("stored")
	runPod(t, ns, nodeFor(t, nodeModes[0]), podWith(pod))
	return ns, pod, kubeconfig
}

// mustExec runs echo say in the pod through kip, and fails unless it works.
func mustExec(t *testing.T, kubeconfig, ns, pod, say string) {
	t.Helper()
	res := kubectl(t, kubeconfig, "exec", "-n", ns, pod, "--", "echo", say)
	if res.ExitCode != 0 || res.Stdout != say+"\n" {
		t.Fatalf("kubectl exec: exit %d\nstdout: %q\nstderr: %q", res.ExitCode, res.Stdout, res.Stderr)
	}
}

// listKeys lists the recordings in the bucket.
func listKeys(t *testing.T, client *minio.Client, bucket string) []string {
	t.Helper()
	var keys []string
	for obj := range client.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Prefix: bucketPrefix + "/", Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		if strings.HasSuffix(obj.Key, ".cast") {
			keys = append(keys, obj.Key)
		}
	}
	return keys
}

// newObject waits for the one recording in the bucket that is not in
// before, and returns its key.
func newObject(t *testing.T, client *minio.Client, bucket string, before []string) string {
	t.Helper()
	var key string
	harness.Eventually(t, 45*time.Second, func() error {
		var added []string
		for _, k := range listKeys(t, client, bucket) {
			if !contains(before, k) {
				added = append(added, k)
			}
		}
		if len(added) != 1 {
			return errorf("%d new recordings in the bucket, want 1: %v", len(added), added)
		}
		key = added[0]
		return nil
	})
	day := time.Now().UTC().Format(time.DateOnly)
	if dir := filepath.Dir(key); dir != bucketPrefix+"/"+day && dir != bucketPrefix+"/"+time.Now().UTC().Add(-time.Hour).Format(time.DateOnly) {
		t.Errorf("recording uploaded as %s, want %s/<yyyy-mm-dd>/<id>.cast", key, bucketPrefix)
	}
	return key
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func getObject(t *testing.T, client *minio.Client, bucket, key string) []byte {
	t.Helper()
	obj, err := client.GetObject(context.Background(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = obj.Close() }()
	data, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("reading %s: %v", key, err)
	}
	return data
}

// uploadedKey reads the public key that the recording's seal names from
// the bucket's keys/, where kip uploaded it.
func uploadedKey(t *testing.T, client *minio.Client, bucket string, data []byte) crypto.PublicKey {
	t.Helper()
	_, streams := readCast(t, data)
	seal := streams["kip-seal"]
	i := strings.Index(seal, `"key":"sha256:`)
	if i < 0 {
		t.Fatalf("the recording's seal names no key: %q", seal)
	}
	fp := seal[i+len(`"key":"sha256:`):]
	fp = fp[:strings.IndexByte(fp, '"')]
	path := filepath.Join(t.TempDir(), fp+".pub")
	if err := os.WriteFile(path, getObject(t, client, bucket, bucketPrefix+"/keys/"+fp+".pub"), 0o600); err != nil {
		t.Fatal(err)
	}
	pub, err := sessions.ReadPublicKey(path)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// fill writes path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", path, err)
			}
			break
		}
	}
	// Small writes may still fit in a last partial block.
	for {
		if _, err := f.Write([]byte{0}); err != nil {
			return
		}
	}
}
