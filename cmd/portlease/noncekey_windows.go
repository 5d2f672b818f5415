package main

import (
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/windows"
)

// openNoFollow opens path for reading, failing if it is a reparse point (a
// symbolic link or junction): it opens the point itself and refuses it.
func openNoFollow(path string) (*os.File, error) {
	name, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, err
	}
	h, err := windows.CreateFile(name, windows.GENERIC_READ, windows.FILE_SHARE_READ, nil,
		windows.OPEN_EXISTING, windows.FILE_ATTRIBUTE_NORMAL|windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &info); err != nil {
		windows.CloseHandle(h)
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	if info.FileAttributes&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0 {
		windows.CloseHandle(h)
		return nil, fmt.Errorf("nonce key %s: a symbolic link or junction; refused", path)
	}
	return os.NewFile(uintptr(h), path), nil
}

// checkPrivateFile accepts the file: Windows has no owner and mode bits to
// check; the key's default place, %LOCALAPPDATA%, lies in the user's
// profile, which only the user and administrators may read.
func checkPrivateFile(string, fs.FileInfo) error { return nil }
