package metrics

import (
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSetText: families in name order with HELP and TYPE, label values and
// HELP text escaped as the text format 0.0.4 says, histograms with
// cumulative buckets ending in +Inf, _sum and _count.
func TestSetText(t *testing.T) {
	var c Counter
	c.Add(3)
	var g Gauge
	g.Set(-1.5)
	h := NewHistogram(0.1, 1)
	for _, v := range []float64{0.05, 0.1, 0.5, 2} {
		h.Observe(v)
	}
	s, err := NewSet(
		Family{Name: "z_seconds", Help: "A histogram.", Type: HistogramType, Collect: func(w *Writer) { w.Histogram(h, "protocol", "natpmp") }},
		Family{Name: "b_total", Help: "Back\\slash and\nnewline \"quoted\".", Type: CounterType, Collect: func(w *Writer) {
			w.Uint(c.Load(), "reason", "a \"quoted\" back\\slash\nnewline")
			w.Uint(math.MaxUint64, "reason", "max")
		}},
		Family{Name: "a_gauge", Help: "A gauge.", Type: GaugeType, Collect: func(w *Writer) { w.Float(g.Load()); w.Float(math.Inf(1), "x", "inf") }},
		Family{Name: "c_mappings", Help: "Kept elsewhere.", Type: HistogramType, Collect: func(w *Writer) {
			w.Buckets([]float64{1, 4}, []uint64{2, 0, 1}, 7)
		}},
	)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.AppendText(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `# HELP a_gauge A gauge.
# TYPE a_gauge gauge
a_gauge -1.5
a_gauge{x="inf"} +Inf
# HELP b_total Back\\slash and\nnewline "quoted".
# TYPE b_total counter
b_total{reason="a \"quoted\" back\\slash\nnewline"} 3
b_total{reason="max"} 18446744073709551615
# HELP c_mappings Kept elsewhere.
# TYPE c_mappings histogram
c_mappings_bucket{le="1"} 2
c_mappings_bucket{le="4"} 2
c_mappings_bucket{le="+Inf"} 3
c_mappings_sum 7
c_mappings_count 3
# HELP z_seconds A histogram.
# TYPE z_seconds histogram
z_seconds_bucket{protocol="natpmp",le="0.1"} 2
z_seconds_bucket{protocol="natpmp",le="1"} 3
z_seconds_bucket{protocol="natpmp",le="+Inf"} 4
z_seconds_sum 2.65
z_seconds_count 4
`
	// The sum of 0.05, 0.1, 0.5 and 2 in float64 is 2.65.
	want = strings.Replace(want, "z_seconds_sum 2.65", `z_seconds_sum{protocol="natpmp"} 2.65`, 1)
	want = strings.Replace(want, "z_seconds_count 4", `z_seconds_count{protocol="natpmp"} 4`, 1)
	if string(got) != want {
		t.Errorf("AppendText =\n%s\nwant\n%s", got, want)
	}
}

// TestSetRefusesBadFamilies: bad names, a name twice, no type or no
// Collect are refused by NewSet.
func TestSetRefusesBadFamilies(t *testing.T) {
	nop := func(*Writer) {}
	for name, fs := range map[string][]Family{
		"bad name":   {{Name: "1abc", Type: GaugeType, Collect: nop}},
		"dash":       {{Name: "a-b", Type: GaugeType, Collect: nop}},
		"twice":      {{Name: "a", Type: GaugeType, Collect: nop}, {Name: "a", Type: CounterType, Collect: nop}},
		"no type":    {{Name: "a", Collect: nop}},
		"no collect": {{Name: "a", Type: GaugeType}},
	} {
		if _, err := NewSet(fs...); err == nil {
			t.Errorf("%s: NewSet(%+v) = nil error", name, fs)
		}
	}
}

// TestWriterRefusesBadSamples: a bad label list, a plain sample in a
// histogram family and histogram samples in a gauge family fail the scrape
// and are left out.
func TestWriterRefusesBadSamples(t *testing.T) {
	h := NewHistogram(1)
	for name, tc := range map[string]struct {
		typ     Type
		collect func(w *Writer)
	}{
		"odd labels":      {GaugeType, func(w *Writer) { w.Float(1, "a") }},
		"bad label":       {GaugeType, func(w *Writer) { w.Float(1, "a-b", "x") }},
		"reserved label":  {GaugeType, func(w *Writer) { w.Float(1, "__name", "x") }},
		"le in histogram": {HistogramType, func(w *Writer) { w.Histogram(h, "le", "x") }},
		"plain in hist":   {HistogramType, func(w *Writer) { w.Uint(1) }},
		"hist in gauge":   {GaugeType, func(w *Writer) { w.Histogram(h) }},
		"short buckets":   {HistogramType, func(w *Writer) { w.Buckets([]float64{1}, []uint64{1}, 1) }},
	} {
		s, err := NewSet(Family{Name: "m", Help: "h", Type: tc.typ, Collect: tc.collect})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.AppendText(nil)
		if err == nil {
			t.Errorf("%s: AppendText = %q, nil error", name, got)
		}
		if strings.Contains(string(got), "\nm") {
			t.Errorf("%s: the bad sample was written: %q", name, got)
		}
	}
}

// TestServeHTTP: GET answers the text with its content type, HEAD its
// headers, POST 405, and a bad sample a 500.
func TestServeHTTP(t *testing.T) {
	var c Counter
	c.Inc()
	s, err := NewSet(Family{Name: "x_total", Help: "x", Type: CounterType, Collect: func(w *Writer) { w.Uint(c.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/plain; version=0.0.4; charset=utf-8" || string(body) != "# HELP x_total x\n# TYPE x_total counter\nx_total 1\n" {
		t.Errorf("GET = %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	resp, err = http.Post(srv.URL+"/metrics", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST = %d; want 405", resp.StatusCode)
	}
	bad, _ := NewSet(Family{Name: "y", Help: "y", Type: GaugeType, Collect: func(w *Writer) { w.Float(1, "odd") }})
	rec := httptest.NewRecorder()
	bad.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("a bad sample: GET = %d; want 500", rec.Code)
	}
}

// TestHistogramConcurrent: observations from many goroutines are all
// counted, in their buckets, and summed.
func TestHistogramConcurrent(t *testing.T) {
	h := NewHistogram(LatencyBounds()...)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				h.ObserveDuration(2 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	if h.Count() != 8000 || math.Abs(h.Sum()-16) > 1e-9 {
		t.Errorf("Count, Sum = %d, %v; want 8000, 16", h.Count(), h.Sum())
	}
	if got := h.counts[2].Load(); got != 8000 { // le="0.0025"
		t.Errorf("bucket le=0.0025 has %d; want 8000", got)
	}
}

// TestNoAllocation: updating a counter, a gauge and a histogram allocates
// nothing (they are on the requests' path), nor does a scrape into a
// buffer large enough.
func TestNoAllocation(t *testing.T) {
	var c Counter
	var g Gauge
	h := NewHistogram(LatencyBounds()...)
	if n := testing.AllocsPerRun(100, func() { c.Inc(); g.Add(1); h.ObserveDuration(time.Millisecond) }); n != 0 {
		t.Errorf("updates allocate %v times", n)
	}
	s, err := NewSet(Family{Name: "h_seconds", Help: "h", Type: HistogramType, Collect: func(w *Writer) { w.Histogram(h, "protocol", "natpmp") }},
		Family{Name: "c_total", Help: "c", Type: CounterType, Collect: func(w *Writer) { w.Uint(c.Load(), "origin", "upnp") }})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { buf, _ = s.AppendText(buf[:0]) }); n != 0 {
		t.Errorf("a scrape allocates %v times", n)
	}
}
