//go:build linux

package containerd

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/containerd/api/types/runc/options"
	apitask "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/errdefs"
	runtimeoptions "github.com/containerd/containerd/pkg/runtimeoptions/v1"
	"github.com/containerd/containerd/runtime/v2/shim"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/greenboost/greenboost-container-toolkit/hook"
	"github.com/greenboost/greenboost-container-toolkit/internal/config"
)

// The requests answered before containerd's shim library runs: --version
// and -info, as flags before any "--".
func TestFlagRequests(t *testing.T) {
	requests := map[string]func([]string) bool{"version": IsVersionRequest, "info": IsInfoRequest}
	for _, tc := range []struct {
		is   string
		args []string
		want bool
	}{
		{"version", []string{"--version"}, true},
		{"version", []string{"-version"}, true},
		{"version", []string{"-v"}, true},
		{"version", []string{"--v"}, true},
		{"version", nil, false},
		{"version", []string{"-namespace", "default", "-id", "x", "-address", "/run/containerd/containerd.sock", "start"}, false},
		{"version", []string{"-namespace", "k8s.io", "-id", "x", "delete"}, false},
		{"version", []string{"--", "--version"}, false},
		{"info", []string{"-info"}, true},
		{"info", []string{"--info"}, true},
		{"info", nil, false},
		{"info", []string{"-namespace", "k8s.io", "-id", "x", "-address", "/run/containerd/containerd.sock", "start"}, false},
		{"info", []string{"--", "-info"}, false},
		{"info", []string{"--version"}, false},
	} {
		if got := requests[tc.is](tc.args); got != tc.want {
			t.Errorf("is %s request (%q) = %v, want %v", tc.is, tc.args, got, tc.want)
		}
	}
	if v := Version(); !strings.HasPrefix(v, BinaryName+" version ") || !strings.Contains(v, "commit: ") {
		t.Errorf("Version() = %q, want %q version ... commit: ...", v, BinaryName)
	}
}

func writeExec(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(path)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestLookRuntime(t *testing.T) {
	tmp := t.TempDir()
	shimDir := filepath.Join(tmp, "shimdir")
	pathDir := filepath.Join(tmp, "pathdir")
	for _, d := range []string{shimDir, pathDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", pathDir)

	if _, err := lookRuntime(shimDir); err == nil || !strings.Contains(err.Error(), RuntimeBinary+" not found") {
		t.Fatalf("no runtime anywhere: got %v, want a not-found error naming %s", err, RuntimeBinary)
	}

	writeExec(t, filepath.Join(pathDir, RuntimeBinary))
	if got, err := lookRuntime(shimDir); err != nil || got != filepath.Join(pathDir, RuntimeBinary) {
		t.Fatalf("runtime only on PATH: got %q, %v", got, err)
	}

	// A non-executable file next to the shim is skipped.
	if err := os.WriteFile(filepath.Join(shimDir, RuntimeBinary), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := lookRuntime(shimDir); err != nil || got != filepath.Join(pathDir, RuntimeBinary) {
		t.Fatalf("non-executable next to the shim: got %q, %v, want the PATH one", got, err)
	}

	writeExec(t, filepath.Join(shimDir, RuntimeBinary))
	if got, err := lookRuntime(shimDir); err != nil || got != filepath.Join(shimDir, RuntimeBinary) {
		t.Fatalf("runtime next to the shim and on PATH: got %q, %v, want the one next to the shim", got, err)
	}
}

func anyOf(t *testing.T, v any) *anypb.Any {
	t.Helper()
	a, err := typeurl.MarshalAny(v)
	if err != nil {
		t.Fatal(err)
	}
	return &anypb.Any{TypeUrl: a.GetTypeUrl(), Value: a.GetValue()}
}

func writeBundle(t *testing.T, cgroupsPath string) string {
	t.Helper()
	dir := t.TempDir()
	data := `{"ociVersion":"1.0.2","linux":{"cgroupsPath":"` + cgroupsPath + `"}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestRuncOptions(t *testing.T) {
	const ours = "/opt/gb/bin/greenboost-runtime"
	find := func() (string, error) { return ours, nil }
	cgroupfs := writeBundle(t, "/default/c1")
	systemd := writeBundle(t, "kubepods-besteffort-pod1.slice:cri-containerd:c1")

	for _, tc := range []struct {
		name       string
		in         *anypb.Any
		bundle     string
		want       *options.Options
		configPath string
	}{
		{"no options", nil, cgroupfs, &options.Options{BinaryName: ours}, ""},
		{"empty any", &anypb.Any{}, cgroupfs, &options.Options{BinaryName: ours}, ""},
		{"runc options without binary", anyOf(t, &options.Options{Root: "/run/r", SystemdCgroup: false}), systemd,
			&options.Options{BinaryName: ours, Root: "/run/r"}, ""},
		{"runc options naming a binary", anyOf(t, &options.Options{BinaryName: "/usr/bin/runc", SystemdCgroup: true}), cgroupfs,
			&options.Options{BinaryName: "/usr/bin/runc", SystemdCgroup: true}, ""},
		{"CRI 1.6: no options, systemd cgroupsPath", nil, systemd, &options.Options{BinaryName: ours, SystemdCgroup: true}, ""},
		{"ConfigPath (ctr --runtime-config-path, CRI's options.ConfigPath)", anyOf(t, &runtimeoptions.Options{ConfigPath: "/etc/gb/small.toml"}), systemd,
			&options.Options{BinaryName: ours, SystemdCgroup: true}, "/etc/gb/small.toml"},
		{"CRI 1.7: runtimeoptions with the options table", anyOf(t, &runtimeoptions.Options{ConfigBody: []byte("SystemdCgroup = true\nRoot = \"/run/gb\"\n")}), cgroupfs,
			&options.Options{BinaryName: ours, Root: "/run/gb", SystemdCgroup: true}, ""},
		{"CRI 1.7: options table naming a binary", anyOf(t, &runtimeoptions.Options{ConfigBody: []byte("BinaryName = \"/x/runc\"\n")}), cgroupfs,
			&options.Options{BinaryName: "/x/runc"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, configPath, err := runcOptions(tc.in, tc.bundle, find)
			if err != nil {
				t.Fatal(err)
			}
			if configPath != tc.configPath {
				t.Errorf("GreenBoost config %q, want %q", configPath, tc.configPath)
			}
			if got.BinaryName != tc.want.BinaryName || got.Root != tc.want.Root || got.SystemdCgroup != tc.want.SystemdCgroup {
				t.Errorf("got BinaryName=%q Root=%q SystemdCgroup=%v, want %q %q %v",
					got.BinaryName, got.Root, got.SystemdCgroup, tc.want.BinaryName, tc.want.Root, tc.want.SystemdCgroup)
			}
			// The result must round-trip as the runc shim reads it.
			a, err := marshalOptions(got)
			if err != nil {
				t.Fatal(err)
			}
			v, err := typeurl.UnmarshalAny(a)
			if err != nil {
				t.Fatal(err)
			}
			if o, ok := v.(*options.Options); !ok || o.BinaryName != tc.want.BinaryName {
				t.Errorf("marshalled options decode to %T %v", v, v)
			}
		})
	}

	if _, _, err := runcOptions(nil, cgroupfs, func() (string, error) { return "", errors.New("greenboost-runtime not found") }); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("no runtime binary: got %v, want the finder's error (no silent fallback to runc)", err)
	}
	if _, _, err := runcOptions(anyOf(t, &apitask.ProcessInfo{Pid: 1}), cgroupfs, find); err == nil || !strings.Contains(err.Error(), "unsupported runtime options") {
		t.Errorf("foreign options type: got %v, want an unsupported-options error", err)
	}
	if _, _, err := runcOptions(anyOf(t, &runtimeoptions.Options{ConfigBody: []byte("SystemdCgroup = ")}), cgroupfs, find); err == nil {
		t.Error("a broken options table was accepted")
	}
}

// TestUseConfig: the GreenBoost config a runtime option names must load; it
// reaches greenboost-runtime through GREENBOOST_CONFIG and the later
// releases through the bundle.
func TestUseConfig(t *testing.T) {
	t.Setenv(config.PathEnv, "/etc/greenboost/from-env.toml")
	bundle := t.TempDir()
	if got := configPathOf(bundle); got != "/etc/greenboost/from-env.toml" {
		t.Errorf("without a ConfigPath the releases use %q, want GREENBOOST_CONFIG's", got)
	}
	for _, bad := range []struct{ path, want string }{
		{"relative.toml", "want an absolute path"},
		{filepath.Join(bundle, "missing.toml"), "runtime option ConfigPath"},
	} {
		if err := useConfig(bundle, bad.path); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("useConfig(%q): %v, want an error containing %q", bad.path, err, bad.want)
		}
	}
	if os.Getenv(config.PathEnv) != "/etc/greenboost/from-env.toml" {
		t.Errorf("a refused ConfigPath changed GREENBOOST_CONFIG to %q", os.Getenv(config.PathEnv))
	}
	good := filepath.Join(t.TempDir(), "small.toml")
	if err := os.WriteFile(good, []byte("[limits]\nram = \"1G\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := useConfig(bundle, good); err != nil {
		t.Fatal(err)
	}
	if got := os.Getenv(config.PathEnv); got != good {
		t.Errorf("GREENBOOST_CONFIG for greenboost-runtime = %q, want %q", got, good)
	}
	t.Setenv(config.PathEnv, "/etc/greenboost/other.toml") // a later shim process
	if got := configPathOf(bundle); got != good {
		t.Errorf("the releases use %q, want the bundle's %q", got, good)
	}
}

// fakeTasks is the inner runc task service.
type fakeTasks struct {
	taskAPI.TaskService
	createErr error
	deleteErr error
	status    apitask.Status
	created   *taskAPI.CreateTaskRequest
	deleted   []string
}

func (f *fakeTasks) Create(_ context.Context, r *taskAPI.CreateTaskRequest) (*taskAPI.CreateTaskResponse, error) {
	f.created = r
	if f.createErr != nil {
		return nil, f.createErr
	}
	return &taskAPI.CreateTaskResponse{Pid: 42}, nil
}

func (f *fakeTasks) Delete(_ context.Context, r *taskAPI.DeleteRequest) (*taskAPI.DeleteResponse, error) {
	f.deleted = append(f.deleted, r.ID+"/"+r.ExecID)
	if f.deleteErr != nil {
		return nil, f.deleteErr
	}
	return &taskAPI.DeleteResponse{Pid: 42}, nil
}

func (f *fakeTasks) State(_ context.Context, r *taskAPI.StateRequest) (*taskAPI.StateResponse, error) {
	return &taskAPI.StateResponse{ID: r.ID, Status: f.status}, nil
}

type fakeReleaser struct{ ids []string }

func (f *fakeReleaser) release(_ context.Context, id, _, _ string) { f.ids = append(f.ids, id) }

func TestServiceCreate(t *testing.T) {
	const ours = "/opt/gb/bin/greenboost-runtime"
	find := func() (string, error) { return ours, nil }
	ctx := context.Background()
	bundle := writeBundle(t, "/default/c1")

	inner, rel := &fakeTasks{}, &fakeReleaser{}
	s := newService(inner, find, rel)
	if _, err := s.Create(ctx, &taskAPI.CreateTaskRequest{ID: "c1", Bundle: bundle}); err != nil {
		t.Fatal(err)
	}
	v, err := typeurl.UnmarshalAny(inner.created.Options)
	if err != nil {
		t.Fatal(err)
	}
	if o := v.(*options.Options); o.BinaryName != ours {
		t.Errorf("the runc task service was asked to run %q, want %q", o.BinaryName, ours)
	}
	if len(rel.ids) != 0 {
		t.Errorf("a successful create released %v", rel.ids)
	}

	inner, rel = &fakeTasks{createErr: errors.New("prestart hook failed")}, &fakeReleaser{}
	s = newService(inner, find, rel)
	if _, err := s.Create(ctx, &taskAPI.CreateTaskRequest{ID: "c2", Bundle: bundle}); err == nil {
		t.Fatal("the inner create's error was lost")
	}
	if len(rel.ids) != 1 || rel.ids[0] != "c2" {
		t.Errorf("a failed create released %v, want [c2]", rel.ids)
	}

	inner, rel = &fakeTasks{}, &fakeReleaser{}
	s = newService(inner, func() (string, error) { return "", errors.New("greenboost-runtime not found") }, rel)
	_, err = s.Create(ctx, &taskAPI.CreateTaskRequest{ID: "c3", Bundle: bundle})
	if err == nil || !errdefs.IsInvalidArgument(errdefs.FromGRPC(err)) || inner.created != nil {
		t.Errorf("no runtime binary: got %v (inner create called: %v), want InvalidArgument and no create", err, inner.created != nil)
	}
}

func TestServiceDelete(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		execID    string
		deleteErr error
		status    apitask.Status
		release   bool
	}{
		{"container deleted", "", nil, apitask.Status_STOPPED, true},
		{"runtime delete failed after exit (failed poststop)", "", errdefs.ToGRPC(errors.New("runc delete: poststop hook failed")), apitask.Status_STOPPED, true},
		{"delete refused while running", "", errdefs.ToGRPC(errdefs.ErrFailedPrecondition), apitask.Status_RUNNING, false},
		{"exec process deleted", "exec1", nil, apitask.Status_STOPPED, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inner, rel := &fakeTasks{deleteErr: tc.deleteErr, status: tc.status}, &fakeReleaser{}
			s := newService(inner, nil, rel)
			_, err := s.Delete(ctx, &taskAPI.DeleteRequest{ID: "c1", ExecID: tc.execID})
			if (err != nil) != (tc.deleteErr != nil) {
				t.Errorf("Delete error %v, inner error %v: the inner result must pass through", err, tc.deleteErr)
			}
			if len(inner.deleted) != 1 {
				t.Errorf("inner Delete called %d times", len(inner.deleted))
			}
			released := len(rel.ids) == 1 && rel.ids[0] == "c1"
			if released != tc.release || len(rel.ids) > 1 {
				t.Errorf("released %v, want release=%v", rel.ids, tc.release)
			}
		})
	}
}

type fakeManager struct {
	shim.Manager
	err error
}

func (f fakeManager) Stop(context.Context, string) (shim.StopStatus, error) {
	return shim.StopStatus{Pid: 7}, f.err
}

func TestManagerStop(t *testing.T) {
	ctx := context.Background()
	rel := &fakeReleaser{}
	if st, err := newManager(fakeManager{}, rel).Stop(ctx, "c1"); err != nil || st.Pid != 7 {
		t.Fatalf("Stop: %v %v", st, err)
	}
	if len(rel.ids) != 1 || rel.ids[0] != "c1" {
		t.Errorf("shim delete released %v, want [c1]", rel.ids)
	}
	rel = &fakeReleaser{}
	if _, err := newManager(fakeManager{err: errors.New("no bundle")}, rel).Stop(ctx, "c2"); err == nil {
		t.Error("the inner Stop's error was lost")
	}
	if len(rel.ids) != 0 {
		t.Errorf("a failed shim delete released %v", rel.ids)
	}
}

func TestDefaultReleaser(t *testing.T) {
	dir := t.TempDir()
	stateDir := filepath.Join(dir, "state")
	cfgPath := filepath.Join(dir, "config.toml")
	cfg := "[kmod]\nload = \"never\"\n[limits]\nenforce = false\n[hook]\nstate-dir = \"" + stateDir + "\"\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GREENBOOST_CONFIG", cfgPath)
	if err := hook.WriteRecord(stateDir, &hook.Record{ID: "c1", Bundle: "/b", Pid: 1}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	defaultReleaser{}.release(ctx, "c1", "", onTaskDelete)
	if _, err := hook.ReadRecord(stateDir, "c1"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the record of c1 is still there after release: %v", err)
	}
	// Idempotent: a second delete (the poststop hook got there first) is fine.
	defaultReleaser{}.release(ctx, "c1", "", onTaskDelete)
	defaultReleaser{}.release(ctx, "never-started", "", onShimDelete)
}
