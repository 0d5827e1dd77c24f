//go:build e2e

package e2e

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// criNamespace is the containerd namespace of CRI's images and containers.
const criNamespace = "k8s.io"

// TestContainerdCRIPod is the Kubernetes path without a kubelet: a pod on the
// RuntimeClass handler "greenboost" through containerd's CRI API, with the
// runtime entry `greenboost-ctk runtime configure --runtime containerd`
// wrote. The pod's annotation greenboost.io/ram-limit becomes the budget of
// its containers (CRI passes a pod annotation into the OCI spec only where
// the entry's pod_annotations allow it), the container sees the device, the
// read-only library and LD_PRELOAD, and removing the pod removes the records.
// It runs on containerd 1.6 (config version 2) and 2.x (its own default
// config, version 4).
func TestContainerdCRIPod(t *testing.T) {
	s := getSuite(t)
	forEachContainerd(t, func(t *testing.T, rel ctrdRelease) {
		cfg := s.writeConfig(t, s.testDir(t), s.runc)
		runCRIPod(t, s, startContainerdRelease(t, s, cfg, rel), cfg, criPod{
			handler:        "greenboost",
			podAnnotations: map[string]string{"greenboost.io/ram-limit": "768M"},
			ram:            768 << 20,
			sandboxRecord:  true,
		})
	})
}

// TestContainerdCRICDI is the Kubernetes path of a device plugin: the pod
// runs on CRI's default handler (plain runc) and its container asks for the
// CDI device greenboost.io/vram=ext the two ways kubelet passes a device
// plugin's CDI devices: the ContainerConfig's CDI_devices field (kubelet
// 1.28 and later) and the older annotation cdi.k8s.io/*. CRI (enable_cdi,
// with the spec `greenboost-ctk cdi generate` wrote in cdi_spec_dirs)
// injects the device, the read-only library, the environment and the
// hooks, which set the container's budget from its environment and remove
// the record with the pod. containerd 1.6 has no CDI, so it runs on 1.7 and
// 2.x.
func TestContainerdCRICDI(t *testing.T) {
	s := getSuite(t)
	const device = "greenboost.io/vram=ext"
	forEachCRICDIContainerd(t, func(t *testing.T, rel ctrdRelease) {
		for _, ask := range []struct {
			name        string
			annotations map[string]string
			cdiDevices  []*cri.CDIDevice
		}{
			{"CDI_devices", nil, []*cri.CDIDevice{{Name: device}}},
			{"annotation", map[string]string{"cdi.k8s.io/greenboost-device-plugin_0": device}, nil},
		} {
			t.Run(ask.name, func(t *testing.T) {
				dir := s.testDir(t)
				cfg := s.writeConfig(t, dir, s.runc)
				specDir := filepath.Join(dir, "cdi")
				s.generateCDISpec(t, cfg, filepath.Join(specDir, "greenboost.io-vram.yaml"))
				runCRIPod(t, s, startContainerdRelease(t, s, cfg, withCRICDI(rel, specDir)), cfg, criPod{
					annotations: ask.annotations,
					cdiDevices:  ask.cdiDevices,
					envs:        []*cri.KeyValue{{Key: "GREENBOOST_RAM_LIMIT", Value: "384M"}},
					ram:         384 << 20,
				})
			})
		}
	})
}

// withCRICDI returns rel with CRI's CDI injection on, reading specs from
// specDir only.
func withCRICDI(rel ctrdRelease, specDir string) ctrdRelease {
	base := rel.baseConfig
	rel.baseConfig = func(t *testing.T, dir, sock string) string {
		t.Helper()
		cfg := map[string]any{}
		if err := toml.Unmarshal([]byte(base(t, dir, sock)), &cfg); err != nil {
			t.Fatal(err)
		}
		plugins, _ := cfg["plugins"].(map[string]any)
		criCfg, ok := plugins[rel.criPlugin].(map[string]any)
		if !ok {
			t.Fatalf("the base config has no table plugins.%q", rel.criPlugin)
		}
		criCfg["enable_cdi"] = true
		criCfg["cdi_spec_dirs"] = []any{specDir}
		data, err := toml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	return rel
}

// criPod is a pod with one container that runs the probe.
type criPod struct {
	handler        string // CRI runtime handler; "" is CRI's default (runc)
	podAnnotations map[string]string
	annotations    map[string]string // the container's
	cdiDevices     []*cri.CDIDevice  // the container's
	envs           []*cri.KeyValue   // the container's
	ram            uint64            // the budget the records must hold
	sandboxRecord  bool              // the pod sandbox has GreenBoost too (its handler does)
}

// runCRIPod runs pod p on containerd d and checks the probe, the records
// while the container runs, and that none is left after the pod is removed.
func runCRIPod(t *testing.T, s *suite, d *ctrd, cfg gbConfig, p criPod) {
	t.Helper()
	d.importImageTo(t, criNamespace, busyboxTar.get(t, s), ctrdImage)
	d.importImageTo(t, criNamespace, pauseTar.get(t, s), ctrdPauseImage)

	conn, err := grpc.Dial("unix://"+d.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rt := cri.NewRuntimeServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	logDir := filepath.Join(d.dir, "pod-logs")
	ctl := d.ctlDir(t, "cri")
	podConfig := &cri.PodSandboxConfig{
		Metadata:     &cri.PodSandboxMetadata{Name: "gb-llm", Uid: "gb-llm-uid", Namespace: "default"},
		Annotations:  p.podAnnotations,
		LogDirectory: logDir,
		Linux: &cri.LinuxPodSandboxConfig{SecurityContext: &cri.LinuxSandboxSecurityContext{
			NamespaceOptions: &cri.NamespaceOption{Network: cri.NamespaceMode_NODE}, // no CNI here
		}},
	}
	pod, err := rt.RunPodSandbox(ctx, &cri.RunPodSandboxRequest{Config: podConfig, RuntimeHandler: p.handler})
	if err != nil {
		t.Fatalf("RunPodSandbox with runtime handler %q: %v", p.handler, err)
	}
	podID := pod.PodSandboxId
	removed := false
	t.Cleanup(func() {
		if !removed {
			_, _ = rt.StopPodSandbox(context.Background(), &cri.StopPodSandboxRequest{PodSandboxId: podID})
			_, _ = rt.RemovePodSandbox(context.Background(), &cri.RemovePodSandboxRequest{PodSandboxId: podID})
		}
	})

	created, err := rt.CreateContainer(ctx, &cri.CreateContainerRequest{
		PodSandboxId: podID,
		Config: &cri.ContainerConfig{
			Metadata:    &cri.ContainerMetadata{Name: "probe"},
			Image:       &cri.ImageSpec{Image: ctrdImage},
			Command:     []string{"/bin/sh", "-c", probeScript + ctrdWaitScript},
			LogPath:     "probe.log",
			Mounts:      []*cri.Mount{{ContainerPath: "/gbctl", HostPath: ctl}},
			Annotations: p.annotations,
			CDIDevices:  p.cdiDevices,
			Envs:        p.envs,
		},
		SandboxConfig: podConfig,
	})
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	id := created.ContainerId
	if _, err := rt.StartContainer(ctx, &cri.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	logPath := filepath.Join(logDir, "probe.log")
	if !waitFor(90*time.Second, func() bool { return strings.Contains(criLog(logPath), "GB:DONE=1") }) {
		t.Fatalf("the container did not run the probe; its log:\n%s", criLog(logPath))
	}
	withRecord := map[string]string{"container": id}
	if p.sandboxRecord {
		withRecord["pod sandbox"] = podID
	} else if rec, err := cfg.readRecord(podID); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the pod sandbox, without GreenBoost, has a record: %+v (%v)", rec, err)
	}
	for what, cid := range withRecord {
		rec, err := cfg.readRecord(cid)
		if err != nil {
			t.Errorf("no GreenBoost record of the running %s: %v", what, err)
		} else if rec.Limits.RAM != p.ram {
			t.Errorf("record of the running %s: RAM limit %d, want %d", what, rec.Limits.RAM, p.ram)
		}
	}

	if err := os.WriteFile(filepath.Join(ctl, "stop"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	exited := waitFor(60*time.Second, func() bool {
		st, err := rt.ContainerStatus(ctx, &cri.ContainerStatusRequest{ContainerId: id})
		return err == nil && st.Status.State == cri.ContainerState_CONTAINER_EXITED
	})
	if !exited {
		t.Fatalf("the container did not exit after the stop file; its log:\n%s", criLog(logPath))
	}
	s.checkGreenBoostProbe(t, criLog(logPath), "")

	if _, err := rt.RemoveContainer(ctx, &cri.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Errorf("RemoveContainer: %v", err)
	}
	if _, err := rt.StopPodSandbox(ctx, &cri.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Errorf("StopPodSandbox: %v", err)
	}
	if _, err := rt.RemovePodSandbox(ctx, &cri.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Errorf("RemovePodSandbox: %v", err)
	}
	removed = true
	for what, cid := range map[string]string{"container": id, "pod sandbox": podID} {
		if _, err := cfg.readRecord(cid); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the %s's record after the pod was removed: %v, want none", what, err)
		}
	}
	// No error about our shim, on any release: containerd 2.x, for one,
	// asks it for its runtime info (-info) on every create until it gets
	// an answer, and logs an error each time it cannot.
	if d.logged("level=error", ctrdShimBinary) {
		t.Errorf("containerd logged an error about %s:\n%s", ctrdShimBinary, d.logTail())
	}
}

// criLog returns what a container wrote to its CRI log file, without the
// "TIME STREAM TAG " prefix of each line.
func criLog(path string) string {
	data, _ := os.ReadFile(path)
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if f := strings.SplitN(line, " ", 4); len(f) == 4 {
			b.WriteString(f[3])
			b.WriteByte('\n')
		}
	}
	return b.String()
}
