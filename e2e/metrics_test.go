package e2e

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

const metricsURL = "http://198.51.100.1:9380/metrics"

// upnpcAddActions is how many control actions one `upnpc -i -u URL -a`
// of miniupnpc 2.2.4 makes: with -u it takes the IGD of the URL without
// asking it anything (UPNP_GetIGDFromUrl), then SetRedirectAndTest calls
// GetExternalIPAddress, AddPortMapping and GetSpecificPortMappingEntry.
const upnpcAddActions = 3

// TestMetrics: portleased with "metrics listen" on its LAN address serves
// the metrics over HTTP to the LAN host; promtool check metrics accepts
// them without a complaint, and the request latencies count the requests
// natpmpc and upnpc made, and the lease counters the mappings and the
// deletion.
func TestMetrics(t *testing.T) {
	t.Parallel()
	promtool := requirePromtool(t)
	lab := netlab.New(t, netlab.Config{})
	d := labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true, ExtraLines: []string{"metrics listen 198.51.100.1:9380"}})
	lan := lab.LAN[0]

	// The start's probe made NAT-PMP requests of its own: the counts are
	// compared before and after.
	before := scrape(t, lan)
	for _, port := range []int{8080, 8081, 8082} {
		natpmpcMap(t, lab, lan, port, port, "tcp", 3600)
	}
	natpmpcDelete(t, lab, lan, 8082, 8082, "tcp")
	for _, port := range []string{"9090", "9091"} {
		out := labpeers.UPnPC(t, lan, "-u", d.DescriptionURL(), "-a", "198.51.100.10", port, port, "TCP", "3600")
		if !strings.Contains(out, "is redirected to internal 198.51.100.10:"+port) {
			t.Fatalf("upnpc -a %s printed:\n%s", port, out)
		}
	}
	body := fetchMetrics(t, lan)
	checkMetrics(t, promtool, body)
	after := parseSamples(t, body)

	// natpmpc asks for the external address before each mapping or
	// deletion (libnatpmp's natpmpc: sendpublicaddressrequest first).
	for name, want := range map[string]float64{
		`portleased_request_duration_seconds_count{protocol="natpmp"}`: 8,
		`portleased_request_duration_seconds_count{protocol="pcp"}`:    0,
		`portleased_request_duration_seconds_count{protocol="upnp"}`:   2 * upnpcAddActions,
	} {
		if got := after[name] - before[name]; got != want {
			t.Errorf("%s went from %v to %v; want %v more", name, before[name], after[name], want)
		}
	}
	for name, want := range map[string]float64{
		`portleased_leases{protocol="tcp",origin="natpmp"}`: 2,
		`portleased_leases{protocol="tcp",origin="upnp"}`:   2,
		`portleased_hosts`:                            1,
		`portleased_grants_total{origin="natpmp"}`:    3,
		`portleased_grants_total{origin="upnp"}`:      2,
		`portleased_deletions_total{origin="natpmp"}`: 1,
		`portleased_refusals_total{reason="rate"}`:    0,
	} {
		if got, ok := after[name]; !ok || got != want {
			t.Errorf("%s = %v (present: %v); want %v", name, got, ok, want)
		}
	}
	for _, name := range []string{"portleased_uptime_seconds", "portleased_kernel_transactions_total"} {
		if after[name] <= 0 {
			t.Errorf("%s = %v; want more than 0", name, after[name])
		}
	}

	// The control socket serves the same metrics.
	onSocket := fetchMetricsOnSocket(t, d.ControlSocket())
	checkMetrics(t, promtool, onSocket)
	if got := parseSamples(t, onSocket)[`portleased_grants_total{origin="natpmp"}`]; got != 3 {
		t.Errorf("grants of NAT-PMP on the control socket = %v; want 3", got)
	}
}

// fetchMetricsOnSocket gets /metrics over the control socket at path.
func fetchMetricsOnSocket(t *testing.T, path string) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
	resp, err := c.Get("http://portleased/metrics")
	if err != nil {
		t.Fatalf("metrics on the control socket %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics on the control socket %s: %s, %v\n%s", path, resp.Status, err, b)
	}
	return string(b)
}

// TestMetricsNotOnTheWAN: "metrics listen" on the gateway's WAN address
// is refused at start, the line named.
func TestMetricsNotOnTheWAN(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	d, err := labpeers.NewPortleased(lab, labpeers.PortleasedConfig{Binary: labpeers.PortleasedBinary(t), Dir: labpeers.StateDir(t),
		ExtraLines: []string{"port range 1024-65535", "metrics listen 203.0.113.1:9380"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := d.Start(ctx); err == nil {
		_ = d.Stop()
		t.Fatalf("portleased started with metrics listen on the WAN address; log:\n%s", d.Log())
	}
	// The lab's two lines, port range, then metrics listen: line 4.
	want := d.ConfigPath() + ":4: metrics listen 203.0.113.1:9380: the address is on the WAN link " + lab.GatewayWANLink
	if !strings.Contains(d.Log(), want) {
		t.Fatalf("log lacks %q:\n%s", want, d.Log())
	}
}

// requirePromtool returns promtool's path; without it the test is skipped,
// or fails with CI=true.
func requirePromtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool not installed (scripts/install-deps.sh installs Debian's prometheus)")
		}
		t.Skip("promtool not installed (scripts/install-deps.sh installs Debian's prometheus)")
	}
	return p
}

// fetchMetrics gets the metrics from host as an operator would: with curl
// in its namespace when installed, else with an HTTP GET from there. The
// answer must be 200 with the text format's content type.
func fetchMetrics(t *testing.T, host *netlab.Host) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if _, err := exec.LookPath("curl"); err == nil {
		const mark = "\n#curl content type: "
		out, err := host.Run(ctx, "curl", "-sS", "--fail", "--max-time", "10", "-w", mark+"%{content_type}", metricsURL)
		if err != nil {
			t.Fatalf("curl %s: %v", metricsURL, err)
		}
		body, ctype, ok := strings.Cut(out, mark)
		if !ok || ctype != "text/plain; version=0.0.4; charset=utf-8" {
			t.Fatalf("curl %s: content type %q; want text/plain; version=0.0.4; charset=utf-8", metricsURL, ctype)
		}
		return body
	}
	resp, err := httpOn(host).Get(metricsURL)
	if err != nil {
		t.Fatalf("GET %s: %v", metricsURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/plain; version=0.0.4; charset=utf-8" {
		t.Fatalf("GET %s: %d %q, %v", metricsURL, resp.StatusCode, resp.Header.Get("Content-Type"), err)
	}
	return string(b)
}

// scrape fetches the metrics and returns their samples.
func scrape(t *testing.T, host *netlab.Host) map[string]float64 {
	t.Helper()
	return parseSamples(t, fetchMetrics(t, host))
}

// checkMetrics fails the test unless promtool check metrics accepts body
// without a word.
func checkMetrics(t *testing.T, promtool, body string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("promtool check metrics: %v\n%s\nof:\n%s", err, out, body)
	}
}

var sampleRE = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$`)

// parseSamples reads the samples of a text exposition: name with labels
// as written, and value. A line that is neither a comment nor a sample
// fails the test.
func parseSamples(t *testing.T, body string) map[string]float64 {
	t.Helper()
	out := make(map[string]float64)
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := sampleRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("not a sample: %q", line)
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		out[m[1]] = v
	}
	if len(out) == 0 {
		t.Fatalf("no samples in %q", body)
	}
	return out
}
