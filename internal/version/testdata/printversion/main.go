// Command printversion prints what internal/version reports, for the test
// that stamps it with -ldflags.
package main

import (
	"fmt"

	"github.com/kip-proxy/kip/internal/version"
)

func main() {
	v := version.Get()
	fmt.Println(v.Version, v.Commit)
}
