//go:build linux

package containerd

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/containerd/api/types/runc/options"
	apitask "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/namespaces"
	runtimeoptions "github.com/containerd/containerd/pkg/runtimeoptions/v1"
	"github.com/containerd/containerd/runtime/linux/runctypes"
	"github.com/containerd/containerd/runtime/v2/runc/manager"
	"github.com/containerd/containerd/runtime/v2/shim"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
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
		{"ctr 1.x --no-pivot/--uidmap: the v1 shim's CreateOptions", anyOf(t, &runctypes.CreateOptions{NoPivotRoot: true, IoUid: 1000, IoGid: 1000}), systemd,
			&options.Options{BinaryName: ours, SystemdCgroup: true, NoPivotRoot: true, IoUid: 1000, IoGid: 1000}, ""},
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
			if got.BinaryName != tc.want.BinaryName || got.Root != tc.want.Root || got.SystemdCgroup != tc.want.SystemdCgroup ||
				got.NoPivotRoot != tc.want.NoPivotRoot || got.IoUid != tc.want.IoUid || got.IoGid != tc.want.IoGid {
				t.Errorf("got BinaryName=%q Root=%q SystemdCgroup=%v NoPivotRoot=%v IoUid=%d IoGid=%d, want %q %q %v %v %d %d",
					got.BinaryName, got.Root, got.SystemdCgroup, got.NoPivotRoot, got.IoUid, got.IoGid,
					tc.want.BinaryName, tc.want.Root, tc.want.SystemdCgroup, tc.want.NoPivotRoot, tc.want.IoUid, tc.want.IoGid)
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

// TestUseConfig: the GreenBoost config a runtime option names must load;
// it reaches the later releases through the bundle.
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
	good := writeConfig(t, "small.toml")
	if err := useConfig(bundle, good); err != nil {
		t.Fatal(err)
	}
	t.Setenv(config.PathEnv, "/etc/greenboost/other.toml") // a later shim process
	if got := configPathOf(bundle); got != good {
		t.Errorf("the releases use %q, want the bundle's %q", got, good)
	}
}

func writeConfig(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte("[limits]\nram = \"1G\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestServiceConfig: greenboost-runtime gets the container's GreenBoost
// config through the shim's GREENBOOST_CONFIG. A shim that serves several
// containers (a pod's, grouped) restores its own for a container without
// ConfigPath, and refuses a container whose config differs from the one
// its running containers use.
func TestServiceConfig(t *testing.T) {
	small, big, base := writeConfig(t, "small.toml"), writeConfig(t, "big.toml"), writeConfig(t, "base.toml")
	const unset = "<unset>"
	type step struct {
		op         string // "create" or "delete"
		id, config string // config: the runtime option ConfigPath
		refused    string // create: a part of the InvalidArgument error; "" for success
		env        string // create: GREENBOOST_CONFIG the runtime gets
	}
	for _, tc := range []struct {
		name     string
		startEnv string // GREENBOOST_CONFIG at the shim's start
		steps    []step
	}{
		{"shim started with GREENBOOST_CONFIG", base, []step{
			{op: "create", id: "c1", config: small, env: small},
			{op: "create", id: "c2", refused: "container c1, served by the same shim"},
			{op: "create", id: "c3", config: big, refused: "runs with " + small},
			{op: "create", id: "c4", config: small, env: small},
			{op: "delete", id: "c1"},
			{op: "delete", id: "c4"},
			{op: "create", id: "c5", env: base},
			{op: "create", id: "c6", config: big, refused: "container c5"},
			{op: "create", id: "c7", config: base, env: base}, // the shim's own, named
		}},
		{"shim started without GREENBOOST_CONFIG", unset, []step{
			{op: "create", id: "c1", config: big, env: big},
			{op: "delete", id: "c1"},
			{op: "create", id: "c2", env: unset},
			{op: "create", id: "c3", env: unset},
			{op: "create", id: "c4", config: small, refused: config.DefaultPath},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(config.PathEnv, tc.startEnv)
			if tc.startEnv == unset {
				os.Unsetenv(config.PathEnv)
			}
			find := func() (string, error) { return "/opt/gb/bin/greenboost-runtime", nil }
			inner := &fakeTasks{}
			s := newService(inner, find, &fakeReleaser{})
			ctx := context.Background()
			for _, st := range tc.steps {
				if st.op == "delete" {
					if _, err := s.Delete(ctx, &taskAPI.DeleteRequest{ID: st.id}); err != nil {
						t.Fatal(err)
					}
					continue
				}
				req := &taskAPI.CreateTaskRequest{ID: st.id, Bundle: writeBundle(t, "/default/"+st.id)}
				if st.config != "" {
					req.Options = anyOf(t, &runtimeoptions.Options{ConfigPath: st.config})
				}
				inner.created, inner.env = nil, ""
				_, err := s.Create(ctx, req)
				if st.refused != "" {
					if err == nil || !errdefs.IsInvalidArgument(errdefs.FromGRPC(err)) || !strings.Contains(err.Error(), st.refused) || inner.created != nil {
						t.Fatalf("create %s: %v (inner create called: %v), want InvalidArgument containing %q and no create", st.id, err, inner.created != nil, st.refused)
					}
					continue
				}
				if err != nil {
					t.Fatalf("create %s: %v", st.id, err)
				}
				if inner.env != st.env {
					t.Errorf("create %s: the runtime got GREENBOOST_CONFIG %q, want %q", st.id, inner.env, st.env)
				}
			}
		})
	}
}

// fakeTasks is the inner runc task service.
type fakeTasks struct {
	taskAPI.TaskService
	createErr error
	deleteErr error
	status    apitask.Status
	created   *taskAPI.CreateTaskRequest
	env       string // GREENBOOST_CONFIG at the last create, "<unset>" when unset
	deleted   []string
}

func (f *fakeTasks) Create(_ context.Context, r *taskAPI.CreateTaskRequest) (*taskAPI.CreateTaskResponse, error) {
	f.created = r
	f.env = "<unset>"
	if v, ok := os.LookupEnv(config.PathEnv); ok {
		f.env = v
	}
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

type fakeReleaser struct{ ids, bundles []string }

func (f *fakeReleaser) release(_ context.Context, id, bundle, _ string) {
	f.ids = append(f.ids, id)
	f.bundles = append(f.bundles, bundle)
}

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

// duringRelease runs before at the start of each release.
type duringRelease struct {
	before func()
	releaser
}

func (d duringRelease) release(ctx context.Context, id, bundle, on string) {
	d.before()
	d.releaser.release(ctx, id, bundle, on)
}

// A create of another container of the same shim (a pod's) with another
// config, arriving while a container's delete releases it, must not change
// the config that release reads: the record would stay in the first
// config's state dir.
func TestServiceDeleteReleasesWithItsConfig(t *testing.T) {
	stateDir := releaserConfig(t) // the shim's own config, from containerd's env
	other := filepath.Join(t.TempDir(), "other.toml")
	if err := os.WriteFile(other, []byte("[hook]\nstate-dir = \"/nonexistent/state\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bundle := writeBundle(t, "/default/b")
	if err := hook.WriteRecord(stateDir, &hook.Record{ID: "b", Bundle: bundle, Pid: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	find := func() (string, error) { return "/usr/bin/greenboost-runtime", nil }
	s := newService(&fakeTasks{status: apitask.Status_STOPPED}, find, nil)
	if _, err := s.Create(ctx, &taskAPI.CreateTaskRequest{ID: "b", Bundle: bundle}); err != nil {
		t.Fatal(err)
	}
	var createErr error
	s.rel = duringRelease{before: func() {
		_, createErr = s.Create(ctx, &taskAPI.CreateTaskRequest{ID: "c", Bundle: writeBundle(t, "/default/c"),
			Options: anyOf(t, &runtimeoptions.Options{ConfigPath: other})})
	}, releaser: defaultReleaser{}}
	if _, err := s.Delete(ctx, &taskAPI.DeleteRequest{ID: "b"}); err != nil {
		t.Fatal(err)
	}
	if _, err := hook.ReadRecord(stateDir, "b"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("b's record is left after its delete (the release read %s): %v", os.Getenv(config.PathEnv), err)
	}
	if createErr == nil || !strings.Contains(createErr.Error(), "one config per shim") {
		t.Errorf("the create of c during b's release: %v, want it refused as one of another config", createErr)
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
	t.Chdir(t.TempDir())
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

// TestManagerStopRuntimeConfig: `shim delete` runs in a new process with
// containerd's environment; containerd's runc manager runs the runtime
// noted in the bundle (greenboost-runtime) with `delete --force`, which
// passes the verb to the runc or crun of its config. That must be the
// config the container was created with (ConfigPath noted in the bundle),
// else GREENBOOST_CONFIG as containerd has it.
func TestManagerStopRuntimeConfig(t *testing.T) {
	small := writeConfig(t, "small.toml")
	for _, tc := range []struct {
		name, note, containerdEnv, want string
	}{
		{"ConfigPath noted in the bundle", small, "/etc/greenboost/default.toml", small},
		{"no ConfigPath", "", "/etc/greenboost/default.toml", "/etc/greenboost/default.toml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(config.PathEnv, tc.containerdEnv)
			const id = "c1"
			bundle := filepath.Join(t.TempDir(), "default", id)
			if err := os.MkdirAll(bundle, 0o755); err != nil {
				t.Fatal(err)
			}
			// A stand-in greenboost-runtime that notes the config it got.
			seen := filepath.Join(t.TempDir(), "seen")
			runtime := filepath.Join(t.TempDir(), RuntimeBinary)
			script := "#!/bin/sh\nprintf '%s %s' \"$GREENBOOST_CONFIG\" \"$*\" > " + seen + "\n"
			if err := os.WriteFile(runtime, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(bundle, "runtime"), []byte(runtime), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(bundle, "init.pid"), []byte("4242"), 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.note != "" {
				if err := useConfig(bundle, tc.note); err != nil {
					t.Fatal(err)
				}
			}
			t.Chdir(bundle)
			rel := &fakeReleaser{}
			ctx := namespaces.WithNamespace(context.Background(), "default")
			if st, err := newManager(manager.NewShimManager(RuntimeType), rel).Stop(ctx, id); err != nil || st.Pid != 4242 {
				t.Fatalf("Stop: %+v, %v", st, err)
			}
			got, err := os.ReadFile(seen)
			if err != nil {
				t.Fatalf("the runtime did not run: %v", err)
			}
			if cfg, args, _ := strings.Cut(string(got), " "); cfg != tc.want || !strings.Contains(args, "delete --force "+id) {
				t.Errorf("the runtime ran %q with GREENBOOST_CONFIG %q, want delete --force %s with %q", args, cfg, id, tc.want)
			}
			if len(rel.bundles) != 1 || rel.bundles[0] != bundle {
				t.Errorf("released bundles %v, want [%s]", rel.bundles, bundle)
			}
		})
	}
}

// releaserConfig points GREENBOOST_CONFIG at a config without a module
// whose state dir it returns.
func releaserConfig(t *testing.T) (stateDir string) {
	t.Helper()
	dir := t.TempDir()
	stateDir = filepath.Join(dir, "state")
	cfgPath := filepath.Join(dir, "config.toml")
	cfg := "[kmod]\nload = \"never\"\n[limits]\nenforce = false\n[hook]\nstate-dir = \"" + stateDir + "\"\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(config.PathEnv, cfgPath)
	return stateDir
}

func TestDefaultReleaser(t *testing.T) {
	stateDir := releaserConfig(t)
	if err := hook.WriteRecord(stateDir, &hook.Record{ID: "c1", Bundle: "/b", Pid: 1 << 30}); err != nil { // a container gone
		t.Fatal(err)
	}
	var logged bytes.Buffer
	logger := logrus.New()
	logger.Out = &logged
	ctx := log.WithLogger(context.Background(), logrus.NewEntry(logger))
	defaultReleaser{}.release(ctx, "c1", "", onTaskDelete)
	if _, err := hook.ReadRecord(stateDir, "c1"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the record of c1 is still there after release: %v", err)
	}
	// Idempotent: a second delete (the poststop hook got there first), or
	// one of a container that never started, warns of nothing.
	defaultReleaser{}.release(ctx, "c1", "", onTaskDelete)
	defaultReleaser{}.release(ctx, "never-started", "", onShimDelete)
	if logged.Len() != 0 {
		t.Fatalf("release logged:\n%s", logged.String())
	}
	if entries, err := os.ReadDir(hook.RecordDir(stateDir)); err != nil || len(entries) != 0 {
		t.Fatalf("records after the releases: %v %v", entries, err)
	}
}

// The shim's release waits for the state lock (held by gc or a prestart
// hook) only releaseLockWait: containerd gives a task delete 10 s and kills
// `shim delete` after 5 s. The record stays for gc.
func TestDefaultReleaserLockBusy(t *testing.T) {
	stateDir := releaserConfig(t)
	if err := hook.WriteRecord(stateDir, &hook.Record{ID: "c1", Bundle: "/b", Pid: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	// Another process's hold, as long as containerd's whole delete timeout.
	lock, err := os.OpenFile(filepath.Join(stateDir, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	done := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		defaultReleaser{}.release(context.Background(), "c1", "/b", onTaskDelete)
		done <- time.Since(start)
	}()
	select {
	case took := <-done:
		if took < releaseLockWait/2 {
			t.Errorf("release returned after %v, before the lock wait (%v) was up", took, releaseLockWait)
		}
	case <-time.After(releaseLockWait + 3*time.Second):
		t.Fatalf("release still waits for the state lock after %v", releaseLockWait+3*time.Second)
	}
	if _, err := hook.ReadRecord(stateDir, "c1"); err != nil {
		t.Errorf("the record was not kept for gc: %v", err)
	}
}
