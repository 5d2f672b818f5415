package upnpsrv

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
)

// Limiter decides whether a client may have one more control action
// served now (a token bucket per source address, say). It must be safe for
// concurrent use.
type Limiter interface {
	Allow(client netip.Addr) bool
}

// guardListener closes at once the connections that may not be served: from
// outside Config.Clients, from outside the served prefix of the address they
// reached (a host of one LAN reaching the gateway's address on another),
// and those beyond Config.MaxConnectionsPerHost of one address. It bounds
// the connections served at once (golang.org/x/net/netutil's
// LimitListener, shared by every listener and ended by Shutdown).
type guardListener struct {
	net.Listener
	s *Server
}

func (l *guardListener) Accept() (net.Conn, error) {
	for {
		select {
		case l.s.slots <- struct{}{}:
		case <-l.s.done:
			return nil, http.ErrServerClosed
		}
		c, err := l.Listener.Accept()
		if err != nil {
			<-l.s.slots
			return nil, err
		}
		client := remoteAddr(c.RemoteAddr().String())
		local := remoteAddr(c.LocalAddr().String())
		switch {
		case !l.s.onLink(client, local):
			l.s.log.Debug("refused connection: not from the served prefix of the address it reached",
				"client", c.RemoteAddr().String(), "local", c.LocalAddr().String())
		case !l.s.conns.add(client):
			l.s.log.Debug("refused connection: the host holds its maximum of connections",
				"client", client, "max", l.s.conns.max)
		default:
			return &slotConn{Conn: c, slots: l.s.slots, conns: &l.s.conns, client: client}, nil
		}
		c.Close()
		<-l.s.slots
	}
}

// onLink reports whether client is in a served prefix that holds local, the
// gateway's address it reached: a LAN host talks to the gateway's address
// on its own link. Without a known local address (ServeHTTP behind another
// listener) the client need only be in a served prefix.
func (s *Server) onLink(client, local netip.Addr) bool {
	client, local = client.Unmap(), local.Unmap()
	if !client.IsValid() {
		return false
	}
	for _, p := range s.cfg.Clients {
		if p.Contains(client) && (!local.IsValid() || p.Contains(local)) {
			return true
		}
	}
	return false
}

// hostConns counts the connections served per source address.
type hostConns struct {
	max int
	mu  sync.Mutex
	n   map[netip.Addr]int
}

// add counts a connection of client, unless it holds max already.
func (h *hostConns) add(client netip.Addr) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n[client] >= h.max {
		return false
	}
	h.n[client]++
	return true
}

// remove forgets a connection of client.
func (h *hostConns) remove(client netip.Addr) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n[client]--; h.n[client] <= 0 {
		delete(h.n, client)
	}
}

// slotConn gives its slot and its host's count back when closed.
type slotConn struct {
	net.Conn
	slots  chan struct{}
	conns  *hostConns
	client netip.Addr
	once   sync.Once
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.conns.remove(c.client)
		<-c.slots
	})
	return err
}

// localAddr returns the gateway's address a request reached, or the zero
// Addr when the server it came through does not tell.
func localAddr(r *http.Request) netip.Addr {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return netip.Addr{}
	}
	return remoteAddr(a.String())
}
