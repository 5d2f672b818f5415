package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/portlease/portlease/gateway"
)

// Client speaks the API over the socket at Socket.
type Client struct {
	Socket string
	// Timeout bounds each request; 0: 30 s.
	Timeout time.Duration
}

// APIError is an error the daemon answered.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return e.Message }

// List returns the leases that pass q.
func (c *Client) List(ctx context.Context, q Query) (Leases, error) {
	var out Leases
	err := c.do(ctx, http.MethodGet, prefix+"/leases?"+q.Values().Encode(), &out)
	return out, err
}

// Lease returns the IPv4 lease of external port port.
func (c *Client) Lease(ctx context.Context, p gateway.Protocol, port uint16) (One, error) {
	var out One
	err := c.do(ctx, http.MethodGet, leasePath(p, port), &out)
	return out, err
}

// Pinhole returns the pinhole of UniqueID id.
func (c *Client) Pinhole(ctx context.Context, id uint16) (One, error) {
	var out One
	err := c.do(ctx, http.MethodGet, pinholePath(id), &out)
	return out, err
}

// Delete deletes the IPv4 lease of external port port.
func (c *Client) Delete(ctx context.Context, p gateway.Protocol, port uint16) (Deleted, error) {
	var out Deleted
	err := c.do(ctx, http.MethodDelete, leasePath(p, port), &out)
	return out, err
}

// DeletePinhole deletes the pinhole of UniqueID id.
func (c *Client) DeletePinhole(ctx context.Context, id uint16) (Deleted, error) {
	var out Deleted
	err := c.do(ctx, http.MethodDelete, pinholePath(id), &out)
	return out, err
}

// DeleteHost deletes every lease of internal address host.
func (c *Client) DeleteHost(ctx context.Context, host netip.Addr) (Deleted, error) {
	var out Deleted
	err := c.do(ctx, http.MethodDelete, prefix+"/hosts/"+url.PathEscape(host.String())+"/leases", &out)
	return out, err
}

// Counters returns the table's counters.
func (c *Client) Counters(ctx context.Context) (Counters, error) {
	var out Counters
	err := c.do(ctx, http.MethodGet, prefix+"/counters", &out)
	return out, err
}

func leasePath(p gateway.Protocol, port uint16) string {
	return fmt.Sprintf("%s/leases/%s/%d", prefix, p, port)
}

func pinholePath(id uint16) string { return fmt.Sprintf("%s/pinholes/%d", prefix, id) }

// do sends a request of method to path and decodes the answer into out,
// or returns the daemon's error as an *APIError, or what kept the request
// from it.
func (c *Client) do(ctx context.Context, method, path string, out any) error {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var dialErr error
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "unix", c.Socket)
			if err != nil {
				dialErr = DialError(c.Socket, err)
				return nil, dialErr
			}
			return conn, nil
		},
		DisableKeepAlives: true,
	}}
	req, err := http.NewRequestWithContext(ctx, method, "http://portleased"+path, nil)
	if err != nil {
		return fmt.Errorf("control: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		if dialErr != nil {
			return dialErr
		}
		return fmt.Errorf("control: %s %s on %s: %w", method, path, c.Socket, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("control: read the answer on %s: %w", c.Socket, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e Error
		if json.Unmarshal(body, &e) != nil || e.Message == "" {
			return &APIError{Status: resp.StatusCode, Message: fmt.Sprintf("control: %s %s: HTTP %s", method, path, resp.Status)}
		}
		return &APIError{Status: resp.StatusCode, Message: e.Message}
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("control: decode the answer to %s %s: %w", method, path, err)
	}
	return nil
}

// DialError explains why connecting to the socket at path failed with err:
// what to do about a permission, a missing socket, or one nothing serves.
func DialError(path string, err error) error {
	switch {
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("control: connect to %s: permission denied (%s): %s; run as root or as a member of group %s",
			path, errnoName(syscall.EACCES), describe(path), groupOf(path))
	case errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("control: connect to %s: no such socket (%s): is portleased running, with \"control socket\" at this path? (-f names its configuration file, --socket the path)", path, errnoName(syscall.ENOENT))
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("control: connect to %s: connection refused (%s): no portleased serves it (the socket is left from a run that ended)", path, errnoName(syscall.ECONNREFUSED))
	}
	return fmt.Errorf("control: connect to %s: %w", path, err)
}

func errnoName(e syscall.Errno) string {
	switch e {
	case syscall.EACCES:
		return "EACCES"
	case syscall.ENOENT:
		return "ENOENT"
	case syscall.ECONNREFUSED:
		return "ECONNREFUSED"
	}
	return strconv.Itoa(int(e))
}

// describe names the owner, group and mode of path, or of the nearest
// directory above it that may be read when path itself may not be.
func describe(path string) string {
	for p := path; ; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil {
			st, ok := fi.Sys().(*syscall.Stat_t)
			if !ok {
				return p + " is mode " + fi.Mode().Perm().String()
			}
			return fmt.Sprintf("%s is %s:%s %04o", p, userName(int(st.Uid)), groupName(int(st.Gid)), uint32(fi.Mode().Perm()))
		}
		if p == filepath.Dir(p) {
			return path + " cannot be read"
		}
	}
}

// groupOf names the group of path, or of the nearest directory above it
// that may be read.
func groupOf(path string) string {
	for p := path; ; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				return groupName(int(st.Gid))
			}
			return "of the socket"
		}
		if p == filepath.Dir(p) {
			return "of the socket"
		}
	}
}

func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(uid)
}

func groupName(gid int) string {
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		return g.Name
	}
	return strconv.Itoa(gid)
}
