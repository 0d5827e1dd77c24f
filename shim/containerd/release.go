//go:build linux

package containerd

import (
	"bytes"
	"context"
	"os"
	"strings"

	"github.com/containerd/containerd/runtime/v2/shim"
	"github.com/containerd/log"

	"github.com/greenboost/greenboost-container-toolkit/hook"
	"github.com/greenboost/greenboost-container-toolkit/internal/config"
)

// releaser drops a container's GreenBoost budget and record.
type releaser interface {
	release(ctx context.Context, id, bundle, on string)
}

// What a release happens on, for the logs.
const (
	onTaskDelete    = "task delete"
	onCreateFailure = "create failure"
	onShimDelete    = "shim delete"
)

// defaultReleaser runs the poststop hook's release path with the config the
// runtime and hook used (the runtime option ConfigPath noted in the bundle,
// else GREENBOOST_CONFIG in containerd's environment, else
// /etc/greenboost/config.toml). A missing record is fine: the poststop hook
// got there first. Failures are logged, not returned: the container is gone
// and its delete must not fail; `greenboost-ctk gc` catches what is left.
type defaultReleaser struct{}

func (defaultReleaser) release(ctx context.Context, id, bundle, on string) {
	logger := log.G(ctx).WithField("id", id).WithField("on", on)
	logger.Debug("greenboost: releasing the container's budget and record")
	cfg, err := config.Load(configPathOf(bundle))
	if err != nil {
		logger.WithError(err).Error("greenboost: cannot release the container's budget: loading the config")
		return
	}
	var warn bytes.Buffer
	if err := hook.ReleaseContainer(cfg, id, bundle, &warn); err != nil {
		logger.WithError(err).Error("greenboost: releasing the container's budget failed; `greenboost-ctk gc` retries")
	}
	if w := strings.TrimSpace(warn.String()); w != "" {
		logger.Warn(w)
	}
	// Also catch other exits whose poststop never ran (DESIGN.md §2).
	hook.CollectBriefly(cfg)
}

// gbManager is containerd's runc shim manager; its Stop (the `delete`
// action containerd runs when a shim died or a start failed) also releases
// the container's budget and record.
type gbManager struct {
	shim.Manager
	rel releaser
}

var _ shim.Manager = gbManager{}

func newManager(m shim.Manager, rel releaser) gbManager {
	return gbManager{Manager: m, rel: rel}
}

func (m gbManager) Stop(ctx context.Context, id string) (shim.StopStatus, error) {
	st, err := m.Manager.Stop(ctx, id)
	if err != nil {
		return st, err
	}
	// containerd runs `shim delete` in the bundle directory.
	bundle, _ := os.Getwd()
	m.rel.release(ctx, id, bundle, onShimDelete)
	return st, nil
}
