package upnpsrv

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/portlease/portlease/upnp"
)

// TestControl64KiBAllocation: a control request of a 64 KiB body, made of
// what costs a token-by-token XML parser most (empty elements), costs the
// handler at most 256 KiB, body buffer included (issue 11; encoding/xml
// took 5.9 MB). A bound on bytes, not a timing.
func TestControl64KiBAllocation(t *testing.T) {
	cfg := testConfig(t)
	cfg.Logger = nil
	s := startServer(t, cfg, nil, nil)
	act := upnp.GetStatusInfo(upnp.ServiceWANIP2)
	act.Args = []upnp.Arg{{Name: "NewPad", Value: ""}}
	env := string(act.AppendEnvelope(nil))
	pad := strings.Repeat("<a/>", (upnp.MaxActionRequestSize-len(env))/4)
	body := []byte(strings.Replace(env, "<NewPad></NewPad>", "<NewPad>"+pad+"</NewPad>", 1))
	if len(body) > upnp.MaxActionRequestSize || len(body) < upnp.MaxActionRequestSize-64 {
		t.Fatalf("body of %d bytes", len(body))
	}
	const runs = 10
	reqs := make([]*http.Request, runs+1)
	for i := range reqs {
		r := httptest.NewRequest(http.MethodPost, "http://"+gwHost+ctlIP, bytes.NewReader(body))
		r.RemoteAddr = net.JoinHostPort(hostA, "40000")
		r.Header.Set("SOAPAction", act.SOAPAction())
		reqs[i] = r
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, reqs[runs])
	if w.Code != http.StatusOK {
		t.Fatalf("GetStatusInfo with a 64 KiB body: HTTP %d\n%s", w.Code, w.Body)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, r := range reqs[:runs] {
		s.ServeHTTP(httptest.NewRecorder(), r)
	}
	runtime.ReadMemStats(&after)
	got := (after.TotalAlloc - before.TotalAlloc) / runs
	t.Logf("%d bytes allocated for a body of %d", got, len(body))
	if got > 256<<10 {
		t.Errorf("a control request of %d bytes allocates %d bytes, want at most %d", len(body), got, 256<<10)
	}
}
