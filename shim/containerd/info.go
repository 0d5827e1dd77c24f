//go:build linux

package containerd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"time"

	apitypes "github.com/containerd/containerd/api/types"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/greenboost/greenboost-container-toolkit/internal/version"
)

// featuresTypeURL is the type containerd 2.x registers for an OCI runtime's
// features (their JSON is the value).
const featuresTypeURL = "types.containerd.io/opencontainers/runtime-spec/1/features/Features"

// featuresTimeout bounds `RUNTIME features`, which only prints.
const featuresTimeout = 10 * time.Second

// IsInfoRequest says whether args (without the program name) ask for the
// shim's runtime info, as containerd 2.x does with `SHIM -info`; containerd
// 1.7's shim library, which ours is built on, rejects the flag.
func IsInfoRequest(args []string) bool {
	for _, a := range args {
		switch a {
		case "-info", "--info":
			return true
		case "--":
			return false
		}
	}
	return false
}

// WriteInfo answers -info: it reads the runtime options (a protobuf Any,
// possibly empty) from stdin and writes a RuntimeInfo protobuf to stdout,
// with the OCI runtime's features as containerd's runc shim reports them.
// containerd 2.x asks before it creates a container with idmap mounts (a
// Kubernetes pod without host user namespace) and fails the create when the
// shim cannot answer.
func WriteInfo(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	info, err := runtimeInfo(ctx, stdin, findRuntimeBinary)
	if err != nil {
		return err
	}
	data, err := proto.Marshal(info)
	if err != nil {
		return fmt.Errorf("encoding the runtime info: %w", err)
	}
	_, err = stdout.Write(data)
	return err
}

func runtimeInfo(ctx context.Context, stdin io.Reader, find runtimeFinder) (*apitypes.RuntimeInfo, error) {
	data, err := io.ReadAll(stdin)
	if err != nil {
		return nil, fmt.Errorf("reading the runtime options: %w", err)
	}
	in := &anypb.Any{}
	if err := proto.Unmarshal(data, in); err != nil {
		return nil, fmt.Errorf("decoding the runtime options: %w", err)
	}
	opts, _, _, err := decodeOptions(in)
	if err != nil {
		return nil, err
	}
	binary, err := runtimeBinary(opts, find)
	if err != nil {
		return nil, err
	}
	info := &apitypes.RuntimeInfo{
		Name:    RuntimeType,
		Version: &apitypes.RuntimeVersion{Version: version.Version, Revision: version.Commit},
	}
	if len(in.GetValue()) > 0 {
		info.Options = in
	}
	// As containerd's runc shim: a runtime without `features` (an old one)
	// gets an answer without them, and containerd then leaves it alone.
	if feat, err := runtimeFeatures(ctx, binary); err == nil {
		info.Features = &anypb.Any{TypeUrl: featuresTypeURL, Value: feat}
	}
	return info, nil
}

// runtimeFeatures returns what `binary features` prints (greenboost-runtime
// passes the verb to runc or crun), checked to be the OCI features JSON.
func runtimeFeatures(ctx context.Context, binary string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, featuresTimeout)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, binary, "features")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s features: %w (%s)", binary, err, bytes.TrimSpace(stderr.Bytes()))
	}
	var f features.Features
	if err := json.Unmarshal(out, &f); err != nil {
		return nil, fmt.Errorf("%s features: %w", binary, err)
	}
	return out, nil
}
