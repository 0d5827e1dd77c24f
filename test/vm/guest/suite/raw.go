package suite

import (
	"encoding/binary"
	"syscall"
	"unsafe"

	"github.com/greenboost/greenboost-container-toolkit/kmod"
)

// rawCg issues a cgroup ioctl with a hand-made struct of size bytes (the
// size field first), bytes from set overriding the rest.
func rawCg(d *kmod.Device, req uintptr, size uint32, set []byte) error {
	buf := make([]byte, 4096)
	copy(buf, set)
	binary.LittleEndian.PutUint32(buf, size)
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(d.Fd()), req, uintptr(unsafe.Pointer(&buf[0])))
	if errno != 0 {
		return errno
	}
	return nil
}
