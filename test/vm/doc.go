// Package vm boots Debian's cloud kernel under qemu (TCG) with an initramfs
// holding busybox, the greenboost module and static Go test programs, and
// turns the PASS/FAIL lines the guest prints on the serial console into Go
// subtests. The tests themselves carry the build tag "vm":
//
//	go test -tags vm -v -timeout 40m ./test/vm/...        # module + integration cases
//	go test -tags vm -v -run TestBench ./test/vm/...      # module benchmarks
//
// Files without the tag (the initramfs writer and the console parser) are
// plain library code with ordinary unit tests.
package vm
