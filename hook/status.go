package hook

import (
	"errors"
	"os"
	"sort"

	"github.com/greenboost/greenboost-container-toolkit/kmod"
)

// ContainerUsage is one row of `greenboost-ctk status`: a record joined with
// the module's node for its cgroup. Limits are in bytes, 0 = unlimited.
type ContainerUsage struct {
	ID      string `json:"id"`
	Cgroup  Cgroup `json:"cgroup"`
	T2Used  uint64 `json:"t2_used_bytes"`
	T2Limit uint64 `json:"t2_limit_bytes"`
	T3Used  uint64 `json:"t3_used_bytes"`
	T3Limit uint64 `json:"t3_limit_bytes"`
	Buffers uint32 `json:"buffers"`
	// Enforced says the module holds the budget: it has a node for the
	// container's cgroup.
	Enforced bool `json:"enforced"`
	Pending  bool `json:"pending"`
	// Lost says the budget was set but the module holds it no more (it was
	// unloaded, reloaded or replaced since): no node for the cgroup.
	Lost bool `json:"lost"`
}

// ReadRecords loads every record in the state dir, sorted by id. Files that
// cannot be read, or that are no record greenboost-hook wrote (wrapping
// ErrForeignRecord, as gc's LeftAlone), are left out and named in leftOut,
// one joined error each, with the others still returned; err is a record
// dir that cannot be listed, where nothing can be said.
func ReadRecords(stateDir string) (recs []*Record, leftOut, err error) {
	ids, err := recordIDs(stateDir)
	if err != nil {
		return nil, nil, err
	}
	var errs []error
	for _, id := range ids {
		rec, err := readListedRecord(stateDir, id)
		if errors.Is(err, os.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		recs = append(recs, rec)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].ID < recs[j].ID })
	return recs, errors.Join(errs...), nil
}

// JoinUsage pairs records with the module's nodes (CG_LIST; none without
// the module) by cgroup; the limits shown are the module's where it has a
// node, the record's otherwise. A record whose budget was set but that has
// no node is Lost. Nodes that no record claims are returned separately.
func JoinUsage(recs []*Record, nodes []kmod.CgEntry) ([]ContainerUsage, []kmod.CgEntry) {
	byCgroup := make(map[kmod.Cgroup]kmod.CgEntry, len(nodes))
	for _, n := range nodes {
		byCgroup[kmod.Cgroup{Hierarchy: n.Hierarchy, ID: n.CgroupID}] = n
	}
	rows := make([]ContainerUsage, 0, len(recs))
	for _, r := range recs {
		row := ContainerUsage{ID: r.ID, Cgroup: r.Cgroup, T2Limit: r.Limits.RAM, T3Limit: r.Limits.NVMe, Pending: r.Pending}
		key := kmod.Cgroup{Hierarchy: r.Cgroup.Hierarchy, ID: r.Cgroup.ID}
		n, ok := byCgroup[key]
		switch {
		case ok && r.Enforced:
			row.Enforced = true
			row.T2Used, row.T3Used, row.Buffers = n.T2Usage, n.T3Usage, n.NrBuffers
			row.T2Limit, row.T3Limit = LimitFromKernel(n.T2Max), LimitFromKernel(n.T3Max)
			delete(byCgroup, key)
		case r.Enforced:
			row.Lost = true
		}
		rows = append(rows, row)
	}
	var orphans []kmod.CgEntry
	for _, n := range nodes {
		if _, ok := byCgroup[kmod.Cgroup{Hierarchy: n.Hierarchy, ID: n.CgroupID}]; ok {
			orphans = append(orphans, n)
		}
	}
	return rows, orphans
}

// LimitFromKernel maps the module's GB_CG_UNLIMITED back to our 0.
func LimitFromKernel(b uint64) uint64 {
	if b == kmod.Unlimited {
		return 0
	}
	return b
}
