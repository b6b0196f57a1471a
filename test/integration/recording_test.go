package integration

import (
	"bufio"
	"bytes"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"github.com/kip-proxy/kip/internal/recording"
	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/localcluster"
	"github.com/kip-proxy/kip/internal/rig/pki"
	"github.com/kip-proxy/kip/internal/sessions"
)

// TestRecordingExec proves that a kip with --recording-dir records a real
// kubectl exec, over WebSocket and over SPDY, as a sealed file that names
// the user, namespace and pod and holds exactly what the command wrote;
// that kip's audit event for the exec names the recording; and that
// changing one byte of it is detected.
func TestRecordingExec(t *testing.T) {
	ns := createNamespace(t)
	user := harness.UniqueName("recorded")
	grant(t, ns, userSubject(user), streamingRules...)
	dir, auditLog, kipURL := startRecordingKip(t)
	kubeconfig := kubeconfigAt(t, kipURL, user)
	waitCanCreate(t, kubeconfig, ns, "exec")
	pod := harness.UniqueName("rec")
	runPod(t, ns, nodeFor(t, nodeModes[0]), podWith(pod))
	pub := recordingKey(t, dir)

	command := []string{"sh", "-c", "echo hello; echo err >&2"}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			before := castFiles(t, dir)
			res := kubectlEnv(t, kubeconfig, tr.env, "", append([]string{"exec", "-n", ns, pod, "--"}, command...)...)
			if res.ExitCode != 0 || res.Stdout != "hello\n" {
				t.Fatalf("kubectl exec: exit %d\nstdout: %q\nstderr: %q", res.ExitCode, res.Stdout, res.Stderr)
			}
			data := newRecording(t, dir, before, pub)
			id, streams := readCast(t, data)
			if id.User != user || id.Namespace != ns || id.Pod != pod || id.Subresource != "exec" || !slices.Equal(id.Command, command) {
				t.Errorf("recording identity %+v, want user %s, pod %s/%s, exec of %q", id, user, ns, pod, command)
			}
			if streams["o"] != "hello\n" || streams["e"] != "err\n" {
				t.Errorf("recorded stdout %q and stderr %q, want %q and %q", streams["o"], streams["e"], "hello\n", "err\n")
			}
			checkAuditNamesRecording(t, auditLog, "/pods/"+pod+"/exec", id)

			i := bytes.Index(data, []byte("hello"))
			if i < 0 {
				t.Fatal("the recording does not hold the output")
			}
			edited := slices.Clone(data)
			edited[i] = 'j'
			if err := recording.Verify(bytes.NewReader(edited), pub); !errors.Is(err, recording.ErrTampered) {
				t.Errorf("Verify of a recording with one byte changed = %v, want ErrTampered", err)
			}
		})
	}
}

// TestRecordingAttach proves the same for kubectl attach, over both
// transports: what the user typed is recorded as input, what the
// container answered as its output, and the recording is sealed when
// kubectl goes away.
func TestRecordingAttach(t *testing.T) {
	ns := createNamespace(t)
	user := harness.UniqueName("attacher")
	grant(t, ns, userSubject(user), streamingRules...)
	dir := t.TempDir()
	kipURL := harness.StartInProcess(t, stack, "--recording-dir="+dir)
	kubeconfig := kubeconfigAt(t, kipURL, user)
	waitCanCreate(t, kubeconfig, ns, "attach")
	pub := recordingKey(t, dir)
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			pod := harness.UniqueName("rec-attach")
			spec := podWith(pod, "sh", "-c", `while read n; do echo "line $n"; echo "err $n" >&2; done`)
			spec.Spec.Containers[0].Stdin = true
			runPod(t, ns, nodeFor(t, nodeModes[0]), spec)
			before := castFiles(t, dir)
			attach := startKubectl(t, kubeconfig, tr.env, "attach", "-i", "-n", ns, pod)
			if _, err := io.WriteString(attach.Stdin, "1\n"); err != nil {
				t.Fatal(err)
			}
			attach.WaitForOutput(t, "line 1\n")
			attach.WaitForError(t, "err 1\n")
			// The session ends when its client goes away.
			_ = attach.Cmd.Process.Kill()
			data := newRecording(t, dir, before, pub)
			id, streams := readCast(t, data)
			if id.User != user || id.Namespace != ns || id.Pod != pod || id.Subresource != "attach" {
				t.Errorf("recording identity %+v, want user %s, pod %s/%s, attach", id, user, ns, pod)
			}
			if streams["i"] != "1\n" || streams["o"] != "line 1\n" || streams["e"] != "err 1\n" {
				t.Errorf("recorded stdin %q, stdout %q, stderr %q; want %q, %q, %q",
					streams["i"], streams["o"], streams["e"], "1\n", "line 1\n", "err 1\n")
			}
		})
	}
}

// TestRecordingPortForward proves that a real kubectl port-forward, over
// WebSocket (SPDY tunnelled in it) and over SPDY, is logged as a sealed
// recording that names the user, pod and port and counts the bytes each
// way, holds none of the forwarded bytes, and is named by kip's audit event.
func TestRecordingPortForward(t *testing.T) {
	ns := createNamespace(t)
	user := harness.UniqueName("forwarder")
	grant(t, ns, userSubject(user), streamingRules...)
	dir, auditLog, kipURL := startRecordingKip(t)
	kubeconfig := kubeconfigAt(t, kipURL, user)
	waitCanCreate(t, kubeconfig, ns, "portforward")
	pub := recordingKey(t, dir)
	echo := harness.StartEchoServer(t)
	pod := harness.UniqueName("rec-forward")
	runPod(t, ns, nodeFor(t, nodeModes[0]), podListeningOn(pod, echo.Port))

	const size = 1 << 20
	for i, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			before := castFiles(t, dir)
			local, forward := startPortForwardProcess(t, kubeconfig, tr.env, ns, pod, echo.Port)
			seed := uint64(40 + i)
			if sent := harness.EchoOnNewConn(t, local, size, seed); echo.NextReceived(t) != sent {
				t.Fatal("the echo server did not receive what was sent")
			}
			// The session ends when kubectl goes away.
			_ = forward.Cmd.Process.Kill()
			data := newRecording(t, dir, before, pub)
			id, streams := readCast(t, data)
			if id.User != user || id.Namespace != ns || id.Pod != pod || id.Subresource != "portforward" {
				t.Errorf("recording identity %+v, want user %s, pod %s/%s, portforward", id, user, ns, pod)
			}
			var summary struct {
				Ports                []int
				FromClient, ToClient int64
			}
			if err := json.Unmarshal([]byte(streams["kip-portforward"]), &summary); err != nil {
				t.Fatalf("port-forward summary %q: %v", streams["kip-portforward"], err)
			}
			delete(streams, "kip-portforward")
			delete(streams, "kip-seal")
			if len(streams) != 0 {
				t.Errorf("a port-forward recording holds events %q, want only its summary", streams)
			}
			// The count includes the framing: SPDY's, and WebSocket's around it.
			if !slices.Equal(summary.Ports, []int{echo.Port}) || summary.FromClient < size || summary.ToClient < size ||
				summary.FromClient > size*11/10 || summary.ToClient > size*11/10 {
				t.Errorf("port-forward summary %+v, want port %d and a little over %d bytes each way", summary, echo.Port, size)
			}
			if len(data) > 8<<10 {
				t.Errorf("a port-forward recording of %d bytes, want a summary only", len(data))
			}
			checkAuditNamesRecording(t, auditLog, "/pods/"+pod+"/portforward", id)
		})
	}
}

// startRecordingKip starts a kip that records sessions in the directory
// it returns, and writes its audit log to the file it returns.
func startRecordingKip(t *testing.T) (dir, auditLog, url string) {
	t.Helper()
	dir = t.TempDir()
	policy, err := harness.WriteAuditPolicy(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	auditLog = filepath.Join(t.TempDir(), "kip-audit.log")
	url = harness.StartInProcess(t, stack, "--recording-dir="+dir,
		"--audit-policy-file="+policy, "--audit-log-path="+auditLog)
	return dir, auditLog, url
}

// checkAuditNamesRecording waits for the ResponseComplete event of the
// session id recorded in kip's audit log, found by its audit ID among the
// requests whose URI contains marker, and checks that it names the
// recording.
func checkAuditNamesRecording(t *testing.T, auditLog, marker string, id recording.Identity) {
	t.Helper()
	if id.SessionID == "" || id.AuditID == "" {
		t.Fatalf("recording identity %+v has no session or audit ID", id)
	}
	harness.Eventually(t, 30*time.Second, func() error {
		for _, ev := range readAudit(t, auditLog, marker) {
			if string(ev.AuditID) != id.AuditID || ev.Stage != auditv1.StageResponseComplete {
				continue
			}
			if got := ev.Annotations[sessions.AuditAnnotation]; got != id.SessionID {
				t.Fatalf("kip's audit event for %s has %s=%q, want the recording's session ID %q",
					ev.RequestURI, sessions.AuditAnnotation, got, id.SessionID)
			}
			return nil
		}
		return errorf("no ResponseComplete event with audit ID %s in kip's audit log", id.AuditID)
	})
}

// recordingKey reads the one public key kip wrote into the recording
// directory dir.
func recordingKey(t *testing.T, dir string) crypto.PublicKey {
	t.Helper()
	keys, err := filepath.Glob(filepath.Join(dir, "keys", "*.pub"))
	if err != nil || len(keys) != 1 {
		t.Fatalf("public keys in the recording directory: %v, %v; want one", keys, err)
	}
	pub, err := sessions.ReadPublicKey(keys[0])
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// newRecording waits for the one recording in dir that is not in before
// to be sealed, and returns it.
func newRecording(t *testing.T, dir string, before []string, pub crypto.PublicKey) []byte {
	t.Helper()
	var data []byte
	harness.Eventually(t, 10*time.Second, func() error {
		var added []string
		for _, f := range castFiles(t, dir) {
			if !slices.Contains(before, f) {
				added = append(added, f)
			}
		}
		if len(added) != 1 {
			return errorf("%d new recordings, want 1: %v", len(added), added)
		}
		data = readFile(t, added[0])
		// The seal is written once kip has seen the session end.
		return recording.Verify(bytes.NewReader(data), pub)
	})
	return data
}

// kubeconfigAt is a kubeconfig for user that reaches the kip at url.
func kubeconfigAt(t *testing.T, url, user string) string {
	t.Helper()
	certPEM, keyPEM, err := stack.Cluster.ClientCA.IssueClient(pki.ClientCertRequest{CommonName: user})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), user+".kubeconfig")
	if err := localcluster.WriteKubeconfig(path, url, stack.KipCAPEM, certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	return path
}

func castFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*", "*.cast"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// readCast returns a recording's identity and what each event code
// carried, in order.
func readCast(t *testing.T, data []byte) (recording.Identity, map[string]string) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	if !sc.Scan() {
		t.Fatal("the recording is empty")
	}
	var h struct {
		Kip recording.Identity `json:"kip"`
	}
	if err := json.Unmarshal(sc.Bytes(), &h); err != nil {
		t.Fatalf("the recording's header: %v", err)
	}
	streams := map[string]string{}
	for sc.Scan() {
		var ev []any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || len(ev) != 3 {
			t.Fatalf("event %s: %v", sc.Bytes(), err)
		}
		code, _ := ev[1].(string)
		text, _ := ev[2].(string)
		streams[code] += text
	}
	return h.Kip, streams
}

// TestRecordingTerminal proves that real kubectl exec -it and attach -it
// on a terminal, over WebSocket and SPDY, are recorded exactly: the
// header has the terminal's size, "i" holds every byte typed, "o" every
// byte kubectl printed of the session, a resize of the terminal is an "r"
// event, and the exit status is recorded before the seal.
func TestRecordingTerminal(t *testing.T) {
	ns := createNamespace(t)
	user := harness.UniqueName("typist")
	grant(t, ns, userSubject(user), streamingRules...)
	dir, _, kipURL := startRecordingKip(t)
	kubeconfig := kubeconfigAt(t, kipURL, user)
	waitCanCreate(t, kubeconfig, ns, "attach")
	pub := recordingKey(t, dir)
	node := nodeFor(t, nodeModes[0])
	// Each line is answered with "got LINE" and the terminal's size; quit
	// exits 3.
	const shell = `while read l; do echo "got $l"; [ "$l" = quit ] && exit 3; stty size; done`
	start := pty.Winsize{Rows: 41, Cols: 123}

	for _, tr := range transports {
		t.Run(tr.name+"/exec", func(t *testing.T) {
			pod := harness.UniqueName("rec-tty")
			runPod(t, ns, node, podWith(pod))
			before := castFiles(t, dir)
			k := startKubectlOnTerminal(t, kubeconfig, tr.env, start,
				"exec", "-i", "-t", "-q", "-n", ns, pod, "--", "sh", "-c", "echo ready; "+shell)
			k.WaitForOutput(t, "ready")
			typed := typeSession(t, k)
			if code := k.Wait(t); code != 3 {
				t.Fatalf("kubectl exited %d, want 3; output:\n%q", code, k.Stdout)
			}
			cast := parseCast(t, newRecording(t, dir, before, pub))
			// After the session, on the terminal restored: kubectl's own.
			checkTerminalRecording(t, cast, k, typed, "command terminated with exit code 3\r\n")
			var status metav1.Status
			if err := json.Unmarshal([]byte(cast.streams["x"]), &status); err != nil {
				t.Fatalf("exit status %q: %v", cast.streams["x"], err)
			}
			if status.Reason != "NonZeroExitCode" || status.Details == nil || len(status.Details.Causes) != 1 ||
				status.Details.Causes[0].Type != "ExitCode" || status.Details.Causes[0].Message != "3" {
				t.Errorf("recorded exit status %s, want exit code 3", cast.streams["x"])
			}
		})

		t.Run(tr.name+"/attach", func(t *testing.T) {
			pod := harness.UniqueName("rec-tty-attach")
			spec := podWith(pod, "sh", "-c", shell)
			spec.Spec.Containers[0].Stdin, spec.Spec.Containers[0].TTY = true, true
			runPod(t, ns, node, spec)
			before := castFiles(t, dir)
			k := startKubectlOnTerminal(t, kubeconfig, tr.env, start, "attach", "-i", "-t", "-q", "-n", ns, pod)
			// Nothing is said before the user types: wait for kubectl to
			// take the terminal, or the terminal itself would echo.
			harness.Eventually(t, time.Minute, func() error {
				echo, err := echoing(int(k.Term.Fd()))
				if err != nil {
					return err
				}
				if echo {
					return errorf("the terminal is not raw yet")
				}
				return nil
			})
			// kubectl sends the terminal's size as it attaches; the
			// recording's header waits for it, then goes to disk.
			harness.Eventually(t, 30*time.Second, func() error {
				for _, f := range castFiles(t, dir) {
					if !slices.Contains(before, f) && bytes.Contains(readFile(t, f), []byte("\n")) {
						return nil
					}
				}
				return errorf("no recording with its header yet")
			})
			typed := typeSession(t, k)
			// The container's exit ends the session; attach reports no
			// exit code, as the kubelet's does not.
			if code := k.Wait(t); code != 0 {
				t.Fatalf("kubectl exited %d, want 0; output:\n%q", code, k.Stdout)
			}
			cast := parseCast(t, newRecording(t, dir, before, pub))
			checkTerminalRecording(t, cast, k, typed, "")
			if !strings.Contains(cast.streams["x"], `"status":"Success"`) {
				t.Errorf("recorded exit status %q, want Success", cast.streams["x"])
			}
		})
	}
}

// typeSession types a line into the shell kubectl runs, resizes the
// terminal to 132x50 until the shell sees it, and quits; it returns every
// byte typed.
func typeSession(t *testing.T, k *kubectlProcess) string {
	t.Helper()
	var typed strings.Builder
	typeIn := func(s string) {
		t.Helper()
		if _, err := io.WriteString(k.Stdin, s); err != nil {
			t.Fatal(err)
		}
		typed.WriteString(s)
	}
	typeIn("hello\r")
	k.WaitForOutput(t, "got hello")
	if err := pty.Setsize(k.Term, &pty.Winsize{Rows: 50, Cols: 132}); err != nil {
		t.Fatal(err)
	}
	// kubectl sends the new size on its own stream, beside what is typed:
	// ask until the shell shows it.
	harness.Eventually(t, 30*time.Second, func() error {
		if strings.Contains(k.Stdout.String(), "50 132") {
			return nil
		}
		typeIn("\r")
		return errorf("the shell shows no 50 132 yet")
	})
	typeIn("quit\r")
	return typed.String()
}

// cast is a recording as asciicast v2, read by a parser of its own.
type cast struct {
	width, height int
	identity      recording.Identity
	streams       map[string]string // each event code's data, concatenated
	resizes       []string
}

func parseCast(t *testing.T, data []byte) cast {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	if !sc.Scan() {
		t.Fatal("the recording is empty")
	}
	var h struct {
		Version       int
		Width, Height int
		Kip           recording.Identity `json:"kip"`
	}
	if err := json.Unmarshal(sc.Bytes(), &h); err != nil || h.Version != 2 {
		t.Fatalf("the recording's header %s: version %d, %v", sc.Bytes(), h.Version, err)
	}
	c := cast{width: h.Width, height: h.Height, identity: h.Kip, streams: map[string]string{}}
	last := 0.0
	for sc.Scan() {
		var ev []json.RawMessage
		var at float64
		var code, text string
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || len(ev) != 3 ||
			json.Unmarshal(ev[0], &at) != nil || json.Unmarshal(ev[1], &code) != nil || json.Unmarshal(ev[2], &text) != nil {
			t.Fatalf("event %s is not [time, code, data]", sc.Bytes())
		}
		if at < last {
			t.Fatalf("event %s goes back in time", sc.Bytes())
		}
		last = at
		c.streams[code] += text
		if code == "r" {
			c.resizes = append(c.resizes, text)
		}
	}
	return c
}

// checkTerminalRecording checks what every terminal session's recording
// holds: the header's size, exactly what was typed and what kubectl
// printed of the session (all it printed but for kubectlOwn, its own
// words at the end), and the resize.
func checkTerminalRecording(t *testing.T, c cast, k *kubectlProcess, typed, kubectlOwn string) {
	t.Helper()
	if c.width != 123 || c.height != 41 {
		t.Errorf("the header's terminal is %dx%d, want the client's 123x41", c.width, c.height)
	}
	if c.streams["i"] != typed {
		t.Errorf("recorded input %q, want what was typed: %q", c.streams["i"], typed)
	}
	if printed := k.Stdout.String(); c.streams["o"]+kubectlOwn != printed {
		t.Errorf("recorded output differs from what kubectl printed:\nrecorded %q\nprinted  %q\n(kubectl's own words after the session: %q)",
			c.streams["o"], printed, kubectlOwn)
	}
	if !slices.Contains(c.resizes, "132x50") {
		t.Errorf("resizes %q, want 132x50", c.resizes)
	}
	if _, ok := c.streams["e"]; ok {
		t.Errorf("a terminal session recorded stderr apart: %q", c.streams["e"])
	}
}

// waitCanCreate waits until kubeconfig's user may create pods/subresource
// in ns through kip, as the RBAC just granted reaches the cluster's
// authorizer.
func waitCanCreate(t *testing.T, kubeconfig, ns, subresource string) {
	t.Helper()
	harness.Eventually(t, 30*time.Second, func() error {
		if res := kubectl(t, kubeconfig, "auth", "can-i", "create", "pods", "--subresource="+subresource, "-n", ns); res.ExitCode != 0 {
			return errorf("can-i create pods/%s: %s%s", subresource, res.Stdout, res.Stderr)
		}
		return nil
	})
}

// TestRecordingSurvivesAKilledKip kills kip with SIGKILL in the middle of a
// recorded exec, as an OOM kill or a lost node would: what kip relayed up
// to a second before is in the recording, the file is still readable, and
// Verify says it is unsealed rather than accept it or call it tampered.
func TestRecordingSurvivesAKilledKip(t *testing.T) {
	ns := createNamespace(t)
	user := harness.UniqueName("killed")
	grant(t, ns, userSubject(user), streamingRules...)
	dir := t.TempDir()
	k := harness.StartKip(t, harness.KipOptions{Stack: stack, Args: []string{"--recording-dir=" + dir}})
	kubeconfig := kubeconfigAt(t, k.URL, user)
	waitCanCreate(t, kubeconfig, ns, "exec")
	pod := harness.UniqueName("rec-killed")
	runPod(t, ns, nodeFor(t, nodeModes[0]), podWith(pod))
	pub := recordingKey(t, dir)

	exec := startKubectl(t, kubeconfig, nil, "exec", "-n", ns, pod, "--",
		"sh", "-c", `i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 0.1; done`)
	exec.WaitForOutput(t, "tick 10\n")
	// Two flush intervals: what was relayed by now must be on disk.
	time.Sleep(2 * time.Second)
	if err := k.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-k.Exited()

	files := castFiles(t, dir)
	if len(files) != 1 {
		t.Fatalf("recordings %v, want the one of the killed session", files)
	}
	data := readFile(t, files[0])
	if err := recording.Verify(bytes.NewReader(data), pub); !errors.Is(err, recording.ErrUnsealed) {
		t.Errorf("Verify of the killed session's recording = %v, want ErrUnsealed", err)
	}
	info, err := recording.ReadInfo(bytes.NewReader(data), int64(len(data)))
	if err != nil || info.Header.Identity.User != user || info.Header.Identity.Pod != pod || info.Sealed {
		t.Fatalf("ReadInfo = %+v, %v; want the header of %s's session in %s, unsealed", info, err, user, pod)
	}
	// A write cut by the kill may leave half a line at the end: a reader
	// takes the whole lines.
	whole := data[:bytes.LastIndexByte(data, '\n')+1]
	_, streams := readCast(t, whole)
	var want strings.Builder
	for i := 1; i <= 10; i++ {
		fmt.Fprintf(&want, "tick %d\n", i)
	}
	if !strings.HasPrefix(streams["o"], want.String()) {
		t.Errorf("the recording's stdout starts %q, want every tick up to 10 relayed before the kill:\n%q", firstBytes(streams["o"], 200), want.String())
	}
}

func firstBytes(s string, n int) string { return s[:min(len(s), n)] }
