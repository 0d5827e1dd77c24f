// Package vm boots Debian's 6.1 cloud kernel under qemu (TCG: no KVM, no 9p)
// with an initramfs holding busybox, the greenboost module built against the
// matching headers, and the static Go guest program test/vm/guest/gbguest,
// and turns the PASS/FAIL lines the guest prints on the serial console into
// Go subtests. The kernel log must show no BUG/WARNING/Oops/Call Trace.
//
// The VM tests carry the build tag "vm"; qemu TCG runs unprivileged, but the
// integration tests pack the host's runc and podman. They need
// qemu-system-x86, busybox-static, gcc/make, e2fsprogs (the T3 store is an
// ext4 image on a virtio disk), runc, podman and linux-image-cloud-amd64 +
// linux-headers of the same 6.1 version (`make deps`):
//
//	go test -tags vm -v -run 'TestVM$' -timeout 40m ./test/vm/    # module cases, T3 included (~3.5 min)
//	go test -tags vm -v -run TestIntegration ./test/vm/           # runc + toolkit + module, v2 and v1 (~2 min)
//	go test -tags vm -v -run TestVMv1 ./test/vm/                  # module cases on a cgroup v1/hybrid boot
//	go test -tags vm -v -run TestDemo ./test/vm/                  # make demo
//	go test -tags vm -v -run TestBench -timeout 30m ./test/vm/    # benchmarks, BENCH lines (~1.5 min)
//
// Knobs (environment): GB_VM_RUN=regexp selects guest cases (boot and load
// always run), GB_VM_STRESS=N sets the stress case's cycles per thread,
// GB_VM_KEEP=dir keeps the console log and initramfs, GB_VM_TIMEOUT,
// GB_VM_KERNEL, GB_VM_KDIR, GB_VM_MODULE, GB_VM_SMP, GB_VM_MEM (see
// harness_test.go).
//
// Files without the tag (the initramfs writer and the console parser) are
// plain library code with ordinary unit tests.
package vm
