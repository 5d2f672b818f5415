package control

import (
	"fmt"
	"slices"
)

// Cred is who is at the other end of a connection, as the kernel recorded
// it at connect(2): its process, user, group and supplementary groups.
type Cred struct {
	PID, UID, GID int
	// Groups are the supplementary groups; nil when the kernel could not
	// tell them (before Linux 4.13, no SO_PEERGROUPS).
	Groups []int
}

// String names the peer for logs and errors.
func (c Cred) String() string {
	return fmt.Sprintf("pid %d (uid %d, gid %d, groups %v)", c.PID, c.UID, c.GID, c.Groups)
}

// Access says who may use the API: root, the user UID (the daemon's own)
// and the members of group GID (the daemon's), by primary or
// supplementary group.
type Access struct {
	UID, GID int
}

// Admits reports whether c may use the API.
func (a Access) Admits(c Cred) bool {
	return c.UID == 0 || c.UID == a.UID || c.GID == a.GID || slices.Contains(c.Groups, a.GID)
}
