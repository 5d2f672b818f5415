//go:build unix

package main

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// openNoFollow opens path for reading, failing if it is a symbolic link.
func openNoFollow(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
}

// checkPrivateFile refuses a file that is not the user's or that others
// may read or write.
func checkPrivateFile(path string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("nonce key %s: cannot tell its owner", path)
	}
	if uid := os.Geteuid(); int(st.Uid) != uid {
		return fmt.Errorf("nonce key %s: owned by uid %d, not by you (uid %d); refused", path, st.Uid, uid)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("nonce key %s: mode %04o lets others read or write it; refused (chmod 600 it, or remove it to have a new one made)", path, perm)
	}
	return nil
}
