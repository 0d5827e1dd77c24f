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
		runCRIPod(t, s, startContainerdRelease(t, s, cfg, rel), cfg)
	})
}

// runCRIPod runs TestContainerdCRIPod's pod on containerd d.
func runCRIPod(t *testing.T, s *suite, d *ctrd, cfg gbConfig) {
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
		Annotations:  map[string]string{"greenboost.io/ram-limit": "768M"},
		LogDirectory: logDir,
		Linux: &cri.LinuxPodSandboxConfig{SecurityContext: &cri.LinuxSandboxSecurityContext{
			NamespaceOptions: &cri.NamespaceOption{Network: cri.NamespaceMode_NODE}, // no CNI here
		}},
	}
	pod, err := rt.RunPodSandbox(ctx, &cri.RunPodSandboxRequest{Config: podConfig, RuntimeHandler: "greenboost"})
	if err != nil {
		t.Fatalf("RunPodSandbox with runtime handler greenboost: %v", err)
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
			Metadata: &cri.ContainerMetadata{Name: "probe"},
			Image:    &cri.ImageSpec{Image: ctrdImage},
			Command:  []string{"/bin/sh", "-c", probeScript + ctrdWaitScript},
			LogPath:  "probe.log",
			Mounts:   []*cri.Mount{{ContainerPath: "/gbctl", HostPath: ctl}},
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
	for what, cid := range map[string]string{"container": id, "pod sandbox": podID} {
		rec, err := cfg.readRecord(cid)
		if err != nil {
			t.Errorf("no GreenBoost record of the running %s: %v", what, err)
		} else if rec.Limits.RAM != 768<<20 {
			t.Errorf("record of the running %s: RAM limit %d, want 768M from the pod annotation", what, rec.Limits.RAM)
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
