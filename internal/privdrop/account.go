package privdrop

import (
	"errors"
	"fmt"
	"os/user"
	"strconv"
)

// AddUserCommand creates the default user, as `make install` and
// scripts/add-user.sh do.
const AddUserCommand = "useradd --system --user-group --no-create-home --home-dir /var/lib/portleased --shell /usr/sbin/nologin portleased"

// Account is the user portleased runs as: its name, uid and primary gid.
type Account struct {
	Name string
	UID  int
	GID  int
}

// Lookup returns the account of the user name. A user that does not exist
// is an error naming it and how to create it; so is root, which would drop
// nothing.
func Lookup(name string) (Account, error) {
	u, err := user.Lookup(name)
	if err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return Account{}, fmt.Errorf("privdrop: user %q does not exist: create it with `make install` or `%s` (or name another with the \"user\" directive)", name, AddUserCommand)
		}
		return Account{}, fmt.Errorf("privdrop: look up user %q: %w", name, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return Account{}, fmt.Errorf("privdrop: user %q: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return Account{}, fmt.Errorf("privdrop: user %q: gid %q: %w", name, u.Gid, err)
	}
	if uid == 0 {
		return Account{}, fmt.Errorf("privdrop: user %q has uid 0: portleased does not run as root; name an unprivileged user", name)
	}
	return Account{Name: name, UID: uid, GID: gid}, nil
}
