// libcni-client: a CNI runtime in miniature, driving plugins through Debian's libcni
// (github.com/containernetworking/cni/libcni) the way podman, containerd and cri-o do.
//
//	libcni-client ADD|CHECK|DEL CONFLIST CONTAINER_ID NETNS_PATH [IFNAME]
//
// Plugins are looked up in CNI_PATH (colon-separated); libcni's result cache goes to
// CNI_CACHE_DIR (libcni's default when unset). ADD prints the result as JSON; a failure
// prints libcni's error on stderr and exits 1.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

func main() {
	if len(os.Args) < 5 || len(os.Args) > 6 {
		fmt.Fprintln(os.Stderr, "usage: libcni-client ADD|CHECK|DEL CONFLIST CONTAINER_ID NETNS_PATH [IFNAME]")
		os.Exit(2)
	}
	command, conflist, container, netns := os.Args[1], os.Args[2], os.Args[3], os.Args[4]
	ifname := "eth0"
	if len(os.Args) == 6 {
		ifname = os.Args[5]
	}
	if err := run(command, conflist, container, netns, ifname); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(command, conflist, container, netns, ifname string) error {
	list, err := libcni.ConfListFromFile(conflist)
	if err != nil {
		return err
	}
	paths := filepath.SplitList(os.Getenv("CNI_PATH"))
	cni := libcni.NewCNIConfigWithCacheDir(paths, os.Getenv("CNI_CACHE_DIR"), nil)
	rt := &libcni.RuntimeConf{
		ContainerID: container,
		NetNS:       netns,
		IfName:      ifname,
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", "default"},
			{"K8S_POD_NAME", "pod-" + container},
		},
	}
	ctx := context.Background()
	switch strings.ToUpper(command) {
	case "ADD":
		result, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			return err
		}
		out, err := json.Marshal(result)
		if err != nil {
			return err
		}
		fmt.Println(string(out))
	case "CHECK":
		return cni.CheckNetworkList(ctx, list, rt)
	case "DEL":
		return cni.DelNetworkList(ctx, list, rt)
	default:
		return fmt.Errorf("unknown command %q", command)
	}
	return nil
}
