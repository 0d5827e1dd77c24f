//go:build linux

package containerd

import (
	"context"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v2"
	apitask "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/pkg/shutdown"
	"github.com/containerd/containerd/plugin"
	"github.com/containerd/containerd/runtime/v2/runc/task"
	"github.com/containerd/containerd/runtime/v2/shim"
	"github.com/containerd/log"
	"github.com/containerd/ttrpc"
)

// service is containerd's runc task service with GreenBoost's changes:
// Create runs greenboost-runtime unless the options name a runtime, with the
// GreenBoost config they name, and Delete of a container releases its
// GreenBoost budget and record.
type service struct {
	taskAPI.TaskService
	findRuntime runtimeFinder
	rel         releaser
	configs     *shimConfig
}

var _ taskAPI.TaskService = (*service)(nil)

// initTaskService is the InitFn of the shim's "task" TTRPC plugin, in place
// of containerd's runtime/v2/runc/task/plugin.
func initTaskService(ic *plugin.InitContext) (interface{}, error) {
	pp, err := ic.GetByID(plugin.EventPlugin, "publisher")
	if err != nil {
		return nil, err
	}
	ss, err := ic.GetByID(plugin.InternalPlugin, "shutdown")
	if err != nil {
		return nil, err
	}
	inner, err := task.NewTaskService(ic.Context, pp.(shim.Publisher), ss.(shutdown.Service))
	if err != nil {
		return nil, err
	}
	return newService(inner, findRuntimeBinary, defaultReleaser{}), nil
}

func newService(inner taskAPI.TaskService, find runtimeFinder, rel releaser) *service {
	return &service{TaskService: inner, findRuntime: find, rel: rel, configs: newShimConfig()}
}

// RegisterTTRPC serves this wrapper, not the inner service, as the task API.
func (s *service) RegisterTTRPC(server *ttrpc.Server) error {
	taskAPI.RegisterTaskService(server, s)
	return nil
}

// Create fills in the runtime binary (and the GreenBoost config the options
// name, which must be the one of the shim's other running containers) and
// creates the container. When creation fails, whatever the prestart hook
// recorded is released.
func (s *service) Create(ctx context.Context, r *taskAPI.CreateTaskRequest) (*taskAPI.CreateTaskResponse, error) {
	opts, configPath, err := runcOptions(r.Options, r.Bundle, s.findRuntime)
	if err == nil && configPath != "" {
		err = useConfig(r.Bundle, configPath)
	}
	if err == nil {
		err = s.configs.enter(r.ID, configPath)
	}
	if err != nil {
		return nil, errdefs.ToGRPC(errdefs.ErrInvalidArgument.WithMessage(err.Error()))
	}
	if r.Options, err = marshalOptions(opts); err != nil {
		s.configs.leave(r.ID)
		return nil, errdefs.ToGRPC(err)
	}
	log.G(ctx).WithField("id", r.ID).WithField("runtime", opts.BinaryName).Debug("greenboost: creating task")
	resp, err := s.TaskService.Create(ctx, r)
	if err != nil {
		s.rel.release(ctx, r.ID, r.Bundle, onCreateFailure)
		s.configs.leave(r.ID)
	}
	return resp, err
}

// Delete deletes a process; for a container's init process it then releases
// the container's GreenBoost budget and record, as the poststop hook does.
// That also happens when the runtime's delete failed (a failed poststop hook
// fails `runc delete`) as long as the container has stopped.
func (s *service) Delete(ctx context.Context, r *taskAPI.DeleteRequest) (*taskAPI.DeleteResponse, error) {
	if r.ExecID != "" {
		return s.TaskService.Delete(ctx, r)
	}
	// The bundle tells this container's record from a namesake's in another
	// namespace; ask before the delete forgets it.
	before, stateErr := s.TaskService.State(ctx, &taskAPI.StateRequest{ID: r.ID})
	resp, err := s.TaskService.Delete(ctx, r)
	if stateErr == nil && (err == nil || s.stopped(ctx, r.ID)) {
		s.rel.release(ctx, r.ID, before.GetBundle(), onTaskDelete)
	}
	if err == nil {
		// greenboost-runtime runs no more verbs for it. Only now: until
		// then its config is the shim's GREENBOOST_CONFIG, which the
		// release reads, and another container's create must not change.
		s.configs.leave(r.ID)
	}
	return resp, err
}

// stopped says whether the container's init process has exited.
func (s *service) stopped(ctx context.Context, id string) bool {
	st, err := s.TaskService.State(ctx, &taskAPI.StateRequest{ID: id})
	return err == nil && st.GetStatus() == apitask.Status_STOPPED
}
