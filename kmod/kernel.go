package kmod

// Kernel is what the hook and greenboost-ctk need from the module.
type Kernel interface {
	Query() (CgQuery, error)
	Info() (Info, error)
	SetLimit(cg Cgroup, t2, t3 uint64) (CgLimit, error)
	Usage(cg Cgroup, self bool) (CgUsage, error)
	Release(cg Cgroup, flags uint32) (CgRelease, error)
	List() ([]CgEntry, error)
	Close() error
}

var _ Kernel = (*Device)(nil)
