//go:build linux

package containerd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	apitypes "github.com/containerd/containerd/api/types"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/greenboost/greenboost-container-toolkit/internal/config"
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
	return hasFlag(args, "-info", "--info")
}

// WriteInfo answers -info: it reads the runtime options (a protobuf Any,
// possibly empty) from stdin and writes a RuntimeInfo protobuf to stdout,
// with the OCI runtime's features as containerd's runc shim reports them;
// why there are none goes to stderr, which containerd reads only when the
// shim fails. containerd 2.x asks before it creates a container with idmap
// mounts (a Kubernetes pod without host user namespace) and fails the
// create when the shim cannot answer; its CRI asks what to advertise for
// the runtime handler.
func WriteInfo(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) error {
	info, err := runtimeInfo(ctx, stdin, findRuntimeBinary, stderr)
	if err != nil {
		return err
	}
	data, err := proto.Marshal(info)
	if err != nil {
		return fmt.Errorf("encoding the runtime info: %w", err)
	}
	if _, err := stdout.Write(data); err != nil {
		return fmt.Errorf("writing the runtime info: %w", err)
	}
	return nil
}

func runtimeInfo(ctx context.Context, stdin io.Reader, find runtimeFinder, warn io.Writer) (*apitypes.RuntimeInfo, error) {
	data, err := io.ReadAll(stdin)
	if err != nil {
		return nil, fmt.Errorf("reading the runtime options: %w", err)
	}
	in := &anypb.Any{}
	if err := proto.Unmarshal(data, in); err != nil {
		return nil, fmt.Errorf("decoding the runtime options: %w", err)
	}
	opts, configPath, _, err := decodeOptions(in)
	if err != nil {
		return nil, err
	}
	binary, err := runtimeBinary(opts, find)
	if err != nil {
		return nil, err
	}
	ourVersion, commit := version.Get()
	info := &apitypes.RuntimeInfo{
		Name:    RuntimeType,
		Version: &apitypes.RuntimeVersion{Version: ourVersion, Revision: commit},
	}
	if len(in.GetValue()) > 0 {
		info.Options = in
	}
	// As containerd's runc shim: a runtime without `features` (an old one)
	// gets an answer without them; containerd then refuses idmap mounts on
	// it.
	feat, err := runtimeFeatures(ctx, binary, configPath)
	if err != nil {
		fmt.Fprintf(warn, "%s -info: no OCI runtime features: %v\n", BinaryName, err)
		return info, nil
	}
	info.Features = &anypb.Any{TypeUrl: featuresTypeURL, Value: feat}
	return info, nil
}

// runtimeFeatures returns what `binary features` prints, checked to be the
// OCI features JSON. greenboost-runtime passes the verb to the runc or crun
// of its config: the one the runtime options name (ConfigPath), as on
// create, else GREENBOOST_CONFIG's.
func runtimeFeatures(ctx context.Context, binary, configPath string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, featuresTimeout)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, binary, "features")
	if configPath != "" {
		cmd.Env = append(os.Environ(), config.PathEnv+"="+configPath)
	}
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
