package gateway

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kip-proxy/kip/internal/recording"
	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/sessions"
)

// assertRecorded checks that the gateway's kip recorded the session want
// describes (user, cluster, namespace, pod, subresource), sealed with the
// key it wrote beside the recordings, with stdout as its output.
func assertRecorded(t *testing.T, want recording.Identity, stdout string) {
	t.Helper()
	keys, err := filepath.Glob(filepath.Join(gw.recordingDir, "keys", "*.pub"))
	if err != nil || len(keys) != 1 {
		t.Fatalf("public keys beside the recordings: %v, %v; want one", keys, err)
	}
	pub, err := sessions.ReadPublicKey(keys[0])
	if err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 10*time.Second, func() error {
		files, err := filepath.Glob(filepath.Join(gw.recordingDir, "*", "*.cast"))
		if err != nil {
			return err
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			id, out := castOf(data)
			if id.User != want.User || id.Cluster != want.Cluster || id.Namespace != want.Namespace ||
				id.Pod != want.Pod || id.Subresource != want.Subresource {
				continue
			}
			// The seal is written once kip has seen the session end;
			// until then the events may still sit in the writer's buffer.
			if err := recording.Verify(bytes.NewReader(data), pub); err != nil {
				return fmt.Errorf("recording %s: %w", f, err)
			}
			if out != stdout {
				t.Fatalf("recording %s holds stdout %q, want %q", f, out, stdout)
			}
			return nil
		}
		return errorf("no recording of %+v among %d", want, len(files))
	})
}

// castOf reads a recording's identity and its stdout events.
func castOf(data []byte) (recording.Identity, string) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	var h struct {
		Kip recording.Identity `json:"kip"`
	}
	if !sc.Scan() || json.Unmarshal(sc.Bytes(), &h) != nil {
		return recording.Identity{}, ""
	}
	var stdout string
	for sc.Scan() {
		var ev []any
		if json.Unmarshal(sc.Bytes(), &ev) == nil && len(ev) == 3 && ev[1] == "o" {
			s, _ := ev[2].(string)
			stdout += s
		}
	}
	return h.Kip, stdout
}
