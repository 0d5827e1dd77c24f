//go:build linux

package containerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

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

// releaseLockWait bounds the wait of a release for the state lock, which
// `greenboost-ctk gc` or a prestart hook may hold: containerd 1.7's CRI gives
// a task delete 10 s and kills `shim delete` after 5 s.
const releaseLockWait = 2 * time.Second

// defaultReleaser runs the poststop hook's release path with the config the
// runtime and hook used (the runtime option ConfigPath noted in the bundle,
// else GREENBOOST_CONFIG in containerd's environment, else
// /etc/greenboost/config.toml). A missing record is fine: the poststop hook
// got there first. Failures are logged, not returned: the container is gone
// and its delete must not fail; `greenboost-ctk gc` catches what is left,
// also when the state lock stays busy longer than releaseLockWait.
type defaultReleaser struct{}

func (defaultReleaser) release(ctx context.Context, id, bundle, on string) {
	logger := log.G(ctx).WithField("id", id).WithField("on", on)
	logger.Debug("greenboost: releasing the container's budget and record")
	cfg, err := config.Load(configPathOf(bundle))
	if err != nil {
		logger.WithError(err).Error("greenboost: cannot release the container's budget: loading the config")
		return
	}
	lockCtx, cancel := context.WithTimeout(ctx, releaseLockWait)
	defer cancel()
	var warn bytes.Buffer
	err = hook.ReleaseContainer(lockCtx, cfg, id, bundle, &warn)
	switch {
	case errors.Is(err, hook.ErrLockTimeout):
		logger.WithError(err).Warn("greenboost: the state lock stayed busy (gc or a prestart hook); the record is kept and `greenboost-ctk gc` releases the budget")
	case err != nil:
		logger.WithError(err).Error("greenboost: releasing the container's budget failed; `greenboost-ctk gc` retries")
	}
	if w := strings.TrimSpace(warn.String()); w != "" {
		logger.Warn(w)
	}
	// Also catch other exits whose poststop never ran (DESIGN.md §2); it
	// skips when the state lock is busy.
	hook.CollectBriefly(cfg, nil)
}

// gbManager is containerd's runc shim manager; its Stop (the `delete`
// action containerd runs when a shim died or a start failed) runs the
// runtime with the container's GreenBoost config and also releases the
// container's budget and record.
type gbManager struct {
	shim.Manager
	rel releaser
}

var _ shim.Manager = gbManager{}

func newManager(m shim.Manager, rel releaser) gbManager {
	return gbManager{Manager: m, rel: rel}
}

// Stop is `shim delete`: containerd runs it in the bundle directory, and
// the inner Stop runs `greenboost-runtime delete --force` there. This
// process has containerd's environment, not the dead shim's, so the
// container's GreenBoost config noted in the bundle (runtime option
// ConfigPath) is set as GREENBOOST_CONFIG first: greenboost-runtime picks
// runc or crun by it.
func (m gbManager) Stop(ctx context.Context, id string) (shim.StopStatus, error) {
	cwd, err := os.Getwd()
	if err != nil {
		return shim.StopStatus{}, fmt.Errorf("finding the bundle: %w", err)
	}
	// The bundle as the inner Stop finds it.
	bundle := filepath.Join(filepath.Dir(cwd), id)
	if path, ok := notedConfigPath(bundle); ok {
		if err := os.Setenv(config.PathEnv, path); err != nil {
			return shim.StopStatus{}, fmt.Errorf("setting %s: %w", config.PathEnv, err)
		}
	}
	st, err := m.Manager.Stop(ctx, id)
	if err != nil {
		return st, err
	}
	m.rel.release(ctx, id, bundle, onShimDelete)
	return st, nil
}
