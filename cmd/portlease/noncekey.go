package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	"github.com/portlease/portlease/client"
)

// The PCP nonce key: a secret from which the client derives each mapping's
// nonce (client.Config.NonceKey), kept in a file so that `portlease unmap`
// and a restarted `portlease keep` renew and delete the mappings an earlier
// run made (RFC 6887 §11.3, §15: another nonce is NOT_AUTHORIZED).

// nonceKeyLen is the size of a key portlease makes.
const nonceKeyLen = 32

const nonceKeyHelp = `  --nonce-key FILE    PCP: the secret key each mapping's nonce is derived
                      from, so that the nonce is the same in every run
                      (unmap needs no --nonce, a restarted keep renews its
                      mappings). Made with %d random bytes and mode 0600 when
                      missing; refused when others can read it or it is not
                      yours. Default: $XDG_STATE_HOME/portlease/pcp-key when
                      XDG_STATE_HOME is set (not on macOS or Windows), else
                      for root /var/lib/portlease/pcp-key (Linux) or
                      /var/db/portlease/pcp-key (macOS, BSDs), for others
                      ~/Library/Application Support/portlease/pcp-key
                      (macOS) or ~/.local/state/portlease/pcp-key; on
                      Windows %%LOCALAPPDATA%%\portlease\pcp-key. Not read
                      with --protocol natpmp or upnp.
`

// defaultNonceKeyPath is where the key lives unless --nonce-key says: in
// the state directory each system's conventions give (XDG Base Directory
// on Linux and the BSDs, hier(7), Apple's File System Programming Guide,
// the user profile's local application data on Windows).
func defaultNonceKeyPath() (string, error) {
	switch runtime.GOOS {
	case "windows":
		d := os.Getenv("LOCALAPPDATA")
		if d == "" {
			return "", errors.New("nonce key: %LOCALAPPDATA% is not set (use --nonce-key)")
		}
		return filepath.Join(d, "portlease", "pcp-key"), nil
	case "darwin":
	default:
		if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
			return filepath.Join(d, "portlease", "pcp-key"), nil
		}
	}
	if os.Geteuid() == 0 {
		if runtime.GOOS == "linux" {
			return "/var/lib/portlease/pcp-key", nil
		}
		return "/var/db/portlease/pcp-key", nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("nonce key: no home directory for the default path (use --nonce-key): %w", err)
	}
	if runtime.GOOS == "darwin" {
		return filepath.Join(home, "Library", "Application Support", "portlease", "pcp-key"), nil
	}
	return filepath.Join(home, ".local", "state", "portlease", "pcp-key"), nil
}

// applyNonceKey gives cfg the nonce key of path (the default when empty),
// unless cfg's method never speaks PCP.
func applyNonceKey(cfg *client.Config, path string) error {
	if cfg.Method == client.NATPMP || cfg.Method == client.UPnP {
		return nil
	}
	if path == "" {
		var err error
		if path, err = defaultNonceKeyPath(); err != nil {
			return err
		}
	}
	key, err := loadNonceKey(path)
	if err != nil {
		return err
	}
	cfg.NonceKey = key
	return nil
}

// loadNonceKey reads the key in path, making it (and its directory, mode
// 0700) when missing. The file must be a regular file of the user's, not
// a symbolic link, that no one else can read or write.
func loadNonceKey(path string) ([]byte, error) {
	f, err := openNoFollow(path)
	if errors.Is(err, os.ErrNotExist) {
		if err := makeNonceKey(path); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, err
		}
		f, err = openNoFollow(path)
	}
	if err != nil {
		if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&os.ModeSymlink != 0 {
			return nil, fmt.Errorf("nonce key %s: a symbolic link; refused", path)
		}
		return nil, fmt.Errorf("nonce key: %w", err)
	}
	defer f.Close()
	if err := checkNonceKeyFile(path, f); err != nil {
		return nil, err
	}
	key, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, fmt.Errorf("nonce key %s: %w", path, err)
	}
	if len(key) < client.MinNonceKeyLen {
		return nil, fmt.Errorf("nonce key %s: %d bytes; want at least %d (remove it to have a new one made)", path, len(key), client.MinNonceKeyLen)
	}
	return key, nil
}

// checkNonceKeyFile refuses a key file that is not a regular file, is not
// the user's, or that others may read or write.
func checkNonceKeyFile(path string, f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("nonce key %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("nonce key %s: not a regular file", path)
	}
	return checkPrivateFile(path, fi)
}

// makeNonceKey writes a new random key to path, which must not exist: to
// a temporary file of its directory made with O_EXCL, mode 0600, then
// linked to path, so that a concurrent run reads either no file or a whole
// key (a path made meanwhile is os.ErrExist).
func makeNonceKey(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("nonce key: %w", err)
	}
	key := make([]byte, nonceKeyLen)
	rand.Read(key)
	f, err := os.CreateTemp(dir, ".pcp-key-*") // O_EXCL, mode 0600
	if err != nil {
		return fmt.Errorf("nonce key: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(key)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("nonce key %s: %w", path, err)
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return err
		}
		return fmt.Errorf("nonce key: %w", err)
	}
	return nil
}
