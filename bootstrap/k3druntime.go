package bootstrap

import (
	"bufio"
	"context"
	"io"
	"net/netip"
	"os"
	"sync"
	"time"

	k3drt "github.com/k3d-io/k3d/v5/pkg/runtimes"
	k3drttypes "github.com/k3d-io/k3d/v5/pkg/runtimes/types"
	k3dtypes "github.com/k3d-io/k3d/v5/pkg/types"
)

// k3dLib serializes harmony's calls into k3d's Docker runtime. Each of its calls builds a new
// Docker CLI (k3d's GetDockerClient), which writes the CLI's package globals (its config folder,
// its certificate path), so two calls at once race: launch asking a cluster for its images while
// another goroutine starts a node, or tests running side by side. Only the runtime's own calls
// hold it, never a wait between them (a node's start, an import's stream), so nothing queues
// behind a long operation.
var k3dLib sync.Mutex

// k3dRuntime is k3d's Docker runtime with every call serialized by k3dLib: harmony hands k3d's
// client functions this one, never k3drt.Docker itself.
var k3dRuntime k3drt.Runtime = serialRuntime{rt: k3drt.Docker}

// serialRuntime is a k3d runtime whose every method holds k3dLib.
type serialRuntime struct{ rt k3drt.Runtime }

func (r serialRuntime) ID() string {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.ID()
}

func (r serialRuntime) GetHost() string {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.GetHost()
}

func (r serialRuntime) CreateNode(a0 context.Context, a1 *k3dtypes.Node) error {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.CreateNode(a0, a1)
}

func (r serialRuntime) DeleteNode(a0 context.Context, a1 *k3dtypes.Node) error {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.DeleteNode(a0, a1)
}

func (r serialRuntime) RenameNode(a0 context.Context, a1 *k3dtypes.Node, a2 string) error {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.RenameNode(a0, a1, a2)
}

func (r serialRuntime) GetNodesByLabel(a0 context.Context, a1 map[string]string) ([]*k3dtypes.Node, error) {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.GetNodesByLabel(a0, a1)
}

func (r serialRuntime) GetNode(a0 context.Context, a1 *k3dtypes.Node) (*k3dtypes.Node, error) {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.GetNode(a0, a1)
}

func (r serialRuntime) GetNodeStatus(a0 context.Context, a1 *k3dtypes.Node) (bool, string, error) {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.GetNodeStatus(a0, a1)
}

func (r serialRuntime) GetNodesInNetwork(a0 context.Context, a1 string) ([]*k3dtypes.Node, error) {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.GetNodesInNetwork(a0, a1)
}

func (r serialRuntime) CreateNetworkIfNotPresent(a0 context.Context, a1 *k3dtypes.ClusterNetwork) (*k3dtypes.ClusterNetwork, bool, error) {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.CreateNetworkIfNotPresent(a0, a1)
}

func (r serialRuntime) GetKubeconfig(a0 context.Context, a1 *k3dtypes.Node) (io.ReadCloser, error) {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.GetKubeconfig(a0, a1)
}

func (r serialRuntime) DeleteNetwork(a0 context.Context, a1 string) error {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.DeleteNetwork(a0, a1)
}

func (r serialRuntime) StartNode(a0 context.Context, a1 *k3dtypes.Node) error {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.StartNode(a0, a1)
}

func (r serialRuntime) StopNode(a0 context.Context, a1 *k3dtypes.Node) error {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.StopNode(a0, a1)
}

func (r serialRuntime) CreateVolume(a0 context.Context, a1 string, a2 map[string]string) error {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.CreateVolume(a0, a1, a2)
}

func (r serialRuntime) DeleteVolume(a0 context.Context, a1 string) error {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.DeleteVolume(a0, a1)
}

func (r serialRuntime) GetVolume(a0 string) (string, error) {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.GetVolume(a0)
}

func (r serialRuntime) GetVolumesByLabel(a0 context.Context, a1 map[string]string) ([]string, error) {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.GetVolumesByLabel(a0, a1)
}

func (r serialRuntime) GetImageStream(a0 context.Context, a1 []string) (io.ReadCloser, error) {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.GetImageStream(a0, a1)
}

func (r serialRuntime) GetRuntimePath() string {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.GetRuntimePath()
}

func (r serialRuntime) ExecInNode(a0 context.Context, a1 *k3dtypes.Node, a2 []string) error {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.ExecInNode(a0, a1, a2)
}

func (r serialRuntime) ExecInNodeWithStdin(a0 context.Context, a1 *k3dtypes.Node, a2 []string, a3 io.ReadCloser) error {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.ExecInNodeWithStdin(a0, a1, a2, a3)
}

func (r serialRuntime) ExecInNodeGetLogs(a0 context.Context, a1 *k3dtypes.Node, a2 []string) (*bufio.Reader, error) {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.ExecInNodeGetLogs(a0, a1, a2)
}

func (r serialRuntime) GetNodeLogs(a0 context.Context, a1 *k3dtypes.Node, a2 time.Time, a3 *k3drttypes.NodeLogsOpts) (io.ReadCloser, error) {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.GetNodeLogs(a0, a1, a2, a3)
}

func (r serialRuntime) GetImages(a0 context.Context) ([]string, error) {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.GetImages(a0)
}

func (r serialRuntime) CopyToNode(a0 context.Context, a1 string, a2 string, a3 *k3dtypes.Node) error {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.CopyToNode(a0, a1, a2, a3)
}

func (r serialRuntime) WriteToNode(a0 context.Context, a1 []byte, a2 string, a3 os.FileMode, a4 *k3dtypes.Node) error {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.WriteToNode(a0, a1, a2, a3, a4)
}

func (r serialRuntime) ReadFromNode(a0 context.Context, a1 string, a2 *k3dtypes.Node) (io.ReadCloser, error) {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.ReadFromNode(a0, a1, a2)
}

func (r serialRuntime) GetHostIP(a0 context.Context, a1 string) (netip.Addr, error) {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.GetHostIP(a0, a1)
}

func (r serialRuntime) ConnectNodeToNetwork(a0 context.Context, a1 *k3dtypes.Node, a2 string) error {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.ConnectNodeToNetwork(a0, a1, a2)
}

func (r serialRuntime) DisconnectNodeFromNetwork(a0 context.Context, a1 *k3dtypes.Node, a2 string) error {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.DisconnectNodeFromNetwork(a0, a1, a2)
}

func (r serialRuntime) Info() (*k3drttypes.RuntimeInfo, error) {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.Info()
}

func (r serialRuntime) GetNetwork(a0 context.Context, a1 *k3dtypes.ClusterNetwork) (*k3dtypes.ClusterNetwork, error) {
	k3dLib.Lock()
	defer k3dLib.Unlock()
	return r.rt.GetNetwork(a0, a1)
}
