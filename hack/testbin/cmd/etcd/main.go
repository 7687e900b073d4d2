// Command etcd is etcd's own server entry point, built from the same Go module
// graph as kube-apiserver so the test control plane needs no binary downloads.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
