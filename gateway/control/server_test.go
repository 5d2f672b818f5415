package control

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func serve(t *testing.T, f *fakeTable, method, path string) (int, []byte) {
	t.Helper()
	s := &Server{Table: f, Now: func() time.Time { return testNow }}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q; want application/json", method, path, ct)
	}
	return rec.Code, rec.Body.Bytes()
}

func decode[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return v
}

// keys names leases as "tcp/40000" or "pinhole/7", in order.
func keys(ls []Lease) string {
	var out []string
	for _, l := range ls {
		if l.Pinhole {
			out = append(out, "pinhole/"+strconv.Itoa(int(l.PinholeID)))
		} else {
			out = append(out, l.Protocol+"/"+strconv.Itoa(int(l.ExternalPort)))
		}
	}
	return strings.Join(out, " ")
}

func TestListFilters(t *testing.T) {
	for _, tc := range []struct{ query, want string }{
		{"", "tcp/40000 tcp/40100 tcp/40200 udp/40001 udp/40300 pinhole/7"},
		{"?host=198.51.100.2", "tcp/40000 tcp/40100 udp/40001"},
		{"?host=::ffff:198.51.100.3", "tcp/40200 udp/40300"},
		{"?host=2001:db8:1::2", "pinhole/7"},
		{"?protocol=udp", "udp/40001 udp/40300"},
		{"?origin=upnp", "tcp/40100 udp/40300"},
		{"?origin=PCP", "tcp/40200 pinhole/7"},
		{"?ports=40000-40150", "tcp/40000 tcp/40100 udp/40001"},
		{"?ports=8080", "pinhole/7"},
		{"?host=198.51.100.2&protocol=tcp&origin=natpmp&ports=40000-40000", "tcp/40000"},
		{"?host=198.51.100.9", ""},
	} {
		code, body := serve(t, newFake(), "GET", "/v1/leases"+tc.query)
		if code != 200 {
			t.Errorf("GET /v1/leases%s = %d %s; want 200", tc.query, code, body)
			continue
		}
		got := decode[Leases](t, body)
		if keys(got.Leases) != tc.want || got.Version != 1 {
			t.Errorf("GET /v1/leases%s = %q (version %d); want %q", tc.query, keys(got.Leases), got.Version, tc.want)
		}
	}
}

func TestListFields(t *testing.T) {
	_, body := serve(t, newFake(), "GET", "/v1/leases?host=198.51.100.3")
	got := decode[Leases](t, body)
	if got.ExternalAddress.String() != "203.0.113.1" || len(got.Leases) != 2 {
		t.Fatalf("got %s", body)
	}
	pcp, upnp := got.Leases[0], got.Leases[1]
	if pcp.Origin != "pcp" || !pcp.NonceProtected || pcp.Remaining != 1800 || pcp.Permanent || pcp.Expires == nil ||
		pcp.HostLeases != 2 || pcp.HostLimit != 1024 || len(pcp.Filters) != 1 || pcp.Filters[0].Remote.String() != "203.0.113.9/32" ||
		pcp.Internal.String() != "198.51.100.3:22" || pcp.InternalPort != 22 {
		t.Errorf("PCP lease = %+v", pcp)
	}
	if upnp.Origin != "upnp" || upnp.NonceProtected || !upnp.Permanent || upnp.Expires != nil || upnp.Remaining != 0 {
		t.Errorf("permanent UPnP lease = %+v", upnp)
	}
	if !strings.Contains(string(body), `"filters": []`) {
		t.Errorf("a lease without filters has no empty filters list:\n%s", body)
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		code         int
		want         string
	}{
		{"GET", "/v1/leases?protocol=sctp", 400, `unknown protocol "sctp"`},
		{"GET", "/v1/leases?origin=pmp", 400, `unknown origin "pmp"`},
		{"GET", "/v1/leases?host=198.51.100", 400, `bad address "198.51.100"`},
		{"GET", "/v1/leases?ports=50-10", 400, `bad port range "50-10"`},
		{"GET", "/v1/leases?color=red", 400, `unknown filter "color"`},
		{"GET", "/v1/leases/icmp/1", 400, `unknown protocol "icmp"`},
		{"GET", "/v1/leases/tcp/0", 400, `bad port "0"`},
		{"GET", "/v1/leases/tcp/41000", 404, "no tcp lease on external port 41000"},
		{"DELETE", "/v1/leases/udp/41000", 404, "no udp lease on external port 41000"},
		{"GET", "/v1/pinholes/8", 404, "no pinhole of id 8"},
		{"DELETE", "/v1/pinholes/x", 400, `bad pinhole id "x"`},
		{"DELETE", "/v1/hosts/nohost/leases", 400, `bad address "nohost"`},
		{"POST", "/v1/leases", 405, "/v1/leases does not take POST"},
		{"GET", "/v2/leases", 404, "API version 1 under /v1/"},
	} {
		code, body := serve(t, newFake(), tc.method, tc.path)
		e := decode[Error](t, body)
		if code != tc.code || e.Status != tc.code || !strings.Contains(e.Message, tc.want) || !strings.HasPrefix(e.Message, "control: ") {
			t.Errorf("%s %s = %d %s; want %d with %q", tc.method, tc.path, code, body, tc.code, tc.want)
		}
	}
}

func TestGetAndDelete(t *testing.T) {
	f := newFake()
	code, body := serve(t, f, "GET", "/v1/leases/tcp/40100")
	if one := decode[One](t, body); code != 200 || one.Lease.Description != "web" || one.Lease.HostLeases != 3 {
		t.Errorf("GET tcp/40100 = %d %s", code, body)
	}
	code, body = serve(t, f, "GET", "/v1/pinholes/7")
	if one := decode[One](t, body); code != 200 || one.Lease.Internal.String() != "[2001:db8:1::2]:8080" || one.Lease.HostLeases != 1 {
		t.Errorf("GET pinhole 7 = %d %s", code, body)
	}
	code, body = serve(t, f, "DELETE", "/v1/leases/TCP/40200")
	if d := decode[Deleted](t, body); code != 200 || keys(d.Deleted) != "tcp/40200" {
		t.Errorf("DELETE tcp/40200 = %d %s", code, body)
	}
	code, body = serve(t, f, "DELETE", "/v1/pinholes/7")
	if d := decode[Deleted](t, body); code != 200 || keys(d.Deleted) != "pinhole/7" {
		t.Errorf("DELETE pinhole 7 = %d %s", code, body)
	}
	code, body = serve(t, f, "DELETE", "/v1/hosts/198.51.100.2/leases")
	if d := decode[Deleted](t, body); code != 200 || keys(d.Deleted) != "tcp/40000 tcp/40100 udp/40001" {
		t.Errorf("DELETE host 198.51.100.2 = %d %s", code, body)
	}
	if got := keys(decode[Leases](t, must200(serve(t, f, "GET", "/v1/leases"))).Leases); got != "udp/40300" {
		t.Errorf("left after the deletions: %q; want udp/40300", got)
	}
	code, body = serve(t, f, "DELETE", "/v1/hosts/198.51.100.2/leases")
	if d := decode[Deleted](t, body); code != 200 || len(d.Deleted) != 0 {
		t.Errorf("DELETE host 198.51.100.2 again = %d %s; want 200 and none", code, body)
	}
}

func must200(code int, body []byte) []byte {
	if code != http.StatusOK {
		panic(string(body))
	}
	return body
}

func TestCounters(t *testing.T) {
	f := newFake()
	f.counters.Granted[2] = 5
	f.counters.TransactionSizes[6] = 3
	f.counters.Refused = map[string]uint64{"host at its share": 2}
	_, body := serve(t, f, "GET", "/v1/counters")
	c := decode[Counters](t, body)
	if c.Version != 1 || c.Granted.PCP != 5 || c.Refused["host at its share"] != 2 || len(c.TransactionSizes) != 7 ||
		c.TransactionSizes[0].LE != "1" || c.TransactionSizes[6].LE != "+Inf" || c.TransactionSizes[6].Count != 3 {
		t.Errorf("GET /v1/counters = %s", body)
	}
	_, body = serve(t, &fakeTable{}, "GET", "/v1/counters")
	if !strings.Contains(string(body), `"refused": {}`) {
		t.Errorf("zero counters: refused is not an empty object:\n%s", body)
	}
}
