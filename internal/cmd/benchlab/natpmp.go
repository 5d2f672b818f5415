package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/portlease/portlease/internal/netlab"
	"github.com/portlease/portlease/natpmp"
)

// exchange sends req to gw's NAT-PMP port from pc and returns the first
// answer from gw, waiting until ctx ends.
func exchange(ctx context.Context, pc net.PacketConn, gw netip.Addr, req []byte) (natpmp.Response, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	if err := pc.SetDeadline(deadline); err != nil {
		return natpmp.Response{}, err
	}
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(gw, natpmp.ServerPort))
	if _, err := pc.WriteTo(req, to); err != nil {
		return natpmp.Response{}, err
	}
	buf := make([]byte, 64)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return natpmp.Response{}, err
		}
		if ua, ok := from.(*net.UDPAddr); !ok || ua.AddrPort().Addr().Unmap() != gw {
			continue
		}
		return natpmp.ParseResponse(buf[:n])
	}
}

// externalAddress asks gw for its external address from host, once.
func externalAddress(ctx context.Context, host *netlab.Host, gw netip.Addr) (netip.Addr, error) {
	pc, err := host.ListenPacket("udp4", ":0")
	if err != nil {
		return netip.Addr{}, err
	}
	defer pc.Close()
	req, err := natpmp.ExternalAddressRequest{}.MarshalBinary()
	if err != nil {
		return netip.Addr{}, err
	}
	resp, err := exchange(ctx, pc, gw, req)
	if err != nil {
		return netip.Addr{}, err
	}
	if err := resp.Err(); err != nil {
		return netip.Addr{}, err
	}
	return resp.ExternalAddress.Address, nil
}

// getDescription fetches url from host and checks that it is an IGD's.
func getDescription(ctx context.Context, host *netlab.Host, url string) error {
	client := &http.Client{Transport: &http.Transport{DialContext: host.Dial, DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("InternetGatewayDevice")) {
		return fmt.Errorf("get %s: %s, no InternetGatewayDevice", url, resp.Status)
	}
	return nil
}

// deleteAll sends host's NAT-PMP "delete all" for TCP and for UDP (internal
// port 0, lifetime 0, RFC 6886 §3.4) at once, each from its own socket, and
// returns the time until both are answered, or an error when ctx ends first.
func deleteAll(ctx context.Context, host *netlab.Host, gw netip.Addr) (time.Duration, error) {
	start := time.Now()
	errs := make(chan error, 2)
	for _, op := range []natpmp.Opcode{natpmp.OpMapTCP, natpmp.OpMapUDP} {
		go func() {
			errs <- func() error {
				pc, err := host.ListenPacket("udp4", ":0")
				if err != nil {
					return err
				}
				defer pc.Close()
				req, err := natpmp.MappingRequest{Opcode: op}.MarshalBinary()
				if err != nil {
					return err
				}
				resp, err := exchange(ctx, pc, gw, req)
				if err != nil {
					return fmt.Errorf("delete all %v: %w", op, err)
				}
				if err := resp.Err(); err != nil {
					return fmt.Errorf("delete all %v: %w", op, err)
				}
				return nil
			}()
		}()
	}
	var first error
	for range 2 {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return time.Since(start), first
}

// probeStats summarises the requests of a prober.
type probeStats struct {
	Answered   int     `json:"answered"`
	Unanswered int     `json:"unanswered"`
	P50ms      float64 `json:"p50_ms"`
	P99ms      float64 `json:"p99_ms"`
	Maxms      float64 `json:"max_ms"`
	// Over10ms counts answers slower than 10 ms, the bound.
	Over10ms int `json:"over_10ms"`
}

// prober is another client that keeps asking the gateway for its external
// address, one request at a time, while something else happens.
type prober struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	lat    []time.Duration
	lost   int
}

// probeTimeout is how long a prober request waits before it counts as
// unanswered and the next is sent.
const probeTimeout = time.Second

// startProber starts a prober on host, pausing pause between requests.
func startProber(ctx context.Context, host *netlab.Host, gw netip.Addr, pause time.Duration) *prober {
	ctx, cancel := context.WithCancel(ctx)
	p := &prober{cancel: cancel}
	p.wg.Go(func() {
		req, _ := natpmp.ExternalAddressRequest{}.MarshalBinary()
		for ctx.Err() == nil {
			func() {
				pc, err := host.ListenPacket("udp4", ":0")
				if err != nil {
					return
				}
				defer pc.Close()
				rctx, rcancel := context.WithTimeout(ctx, probeTimeout)
				defer rcancel()
				start := time.Now()
				_, err = exchange(rctx, pc, gw, req)
				d := time.Since(start)
				p.mu.Lock()
				defer p.mu.Unlock()
				switch {
				case err == nil:
					p.lat = append(p.lat, d)
				case ctx.Err() == nil:
					p.lost++
				}
			}()
			select {
			case <-ctx.Done():
			case <-time.After(pause):
			}
		}
	})
	return p
}

// stop ends the prober and returns its statistics.
func (p *prober) stop() probeStats {
	p.cancel()
	p.wg.Wait()
	s := probeStats{Answered: len(p.lat), Unanswered: p.lost}
	if len(p.lat) == 0 {
		return s
	}
	slices.Sort(p.lat)
	rank := func(q float64) time.Duration {
		i := int(q*float64(len(p.lat))+0.999999) - 1
		return p.lat[max(0, min(i, len(p.lat)-1))]
	}
	s.P50ms = ms(rank(0.50))
	s.P99ms = ms(rank(0.99))
	s.Maxms = ms(p.lat[len(p.lat)-1])
	for _, d := range p.lat {
		if d > 10*time.Millisecond {
			s.Over10ms++
		}
	}
	return s
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
