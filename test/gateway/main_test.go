package gateway

import (
	"context"
	"os"
	"testing"

	"github.com/kip-proxy/kip/internal/rig/harness"
)

// gw is shared by every test in the package: three control planes and a
// kip take tens of seconds to start, a test takes a few.
var gw *gateway

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, "gateway", setUp))
}

func setUp(ctx context.Context, dir string) (harness.Shared, error) {
	var err error
	gw, err = startGateway(ctx, dir)
	if gw == nil {
		return harness.Shared{}, err
	}
	// The clusters' and kip's logs are in dir, which Main names.
	return harness.Shared{Stop: gw.stop}, err
}
