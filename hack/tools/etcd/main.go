// Command etcd is the pinned etcd server that kip's test rig and `kip dev` start.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
