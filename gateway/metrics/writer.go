package metrics

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Type is a metric family's type, as its TYPE line names it.
type Type uint8

// The types of family this package writes.
const (
	CounterType Type = iota + 1
	GaugeType
	HistogramType
)

// String returns "counter", "gauge" or "histogram".
func (t Type) String() string {
	switch t {
	case CounterType:
		return "counter"
	case GaugeType:
		return "gauge"
	case HistogramType:
		return "histogram"
	}
	return "untyped"
}

// Writer appends the samples of one family at a time in the text format
// 0.0.4. Family.Collect gets one from Set, positioned on its family: the
// sample's name is the family's (with _bucket, _sum and _count for a
// histogram). Labels are given as name, value pairs; the names must be
// label names ([a-zA-Z_][a-zA-Z0-9_]*, not starting with "__", not "le"),
// and a sample with a bad list is left out and makes the Set's scrape
// fail, for the tests to see.
type Writer struct {
	b    []byte
	name string
	typ  Type
	err  error
}

// Uint writes a sample of value v, exactly (a counter's count).
func (w *Writer) Uint(v uint64, labels ...string) {
	if !w.begin(labels) {
		return
	}
	w.b = strconv.AppendUint(w.b, v, 10)
	w.b = append(w.b, '\n')
}

// Float writes a sample of value v (a gauge's).
func (w *Writer) Float(v float64, labels ...string) {
	if !w.begin(labels) {
		return
	}
	w.b = appendFloat(w.b, v)
	w.b = append(w.b, '\n')
}

// Histogram writes h's buckets, sum and count.
func (w *Writer) Histogram(h *Histogram, labels ...string) {
	var cum uint64
	for i := range h.counts {
		cum += h.counts[i].Load()
		w.bucket(h.bound(i), cum, labels)
	}
	w.histogramEnd(h.Sum(), cum, labels)
}

// Buckets writes a histogram kept elsewhere: counts[i] observations
// (not cumulative) at most bounds[i], the last one of counts the larger
// ones (len(counts) == len(bounds)+1), whose sum is sum.
func (w *Writer) Buckets(bounds []float64, counts []uint64, sum float64, labels ...string) {
	if len(counts) != len(bounds)+1 {
		w.fail(fmt.Errorf("%d bucket counts for %d bounds", len(counts), len(bounds)))
		return
	}
	var cum uint64
	for i, c := range counts {
		cum += c
		bound := math.Inf(1)
		if i < len(bounds) {
			bound = bounds[i]
		}
		w.bucket(bound, cum, labels)
	}
	w.histogramEnd(sum, cum, labels)
}

func (h *Histogram) bound(i int) float64 {
	if i < len(h.bounds) {
		return h.bounds[i]
	}
	return math.Inf(1)
}

// bucket writes NAME_bucket{labels,le="bound"} cum.
func (w *Writer) bucket(bound float64, cum uint64, labels []string) {
	if !w.check(HistogramType, labels) {
		return
	}
	w.b = append(w.b, w.name...)
	w.b = append(w.b, "_bucket{"...)
	w.b = appendLabels(w.b, labels)
	if len(labels) > 0 {
		w.b = append(w.b, ',')
	}
	w.b = append(w.b, `le="`...)
	w.b = appendFloat(w.b, bound)
	w.b = append(w.b, `"} `...)
	w.b = strconv.AppendUint(w.b, cum, 10)
	w.b = append(w.b, '\n')
}

func (w *Writer) histogramEnd(sum float64, count uint64, labels []string) {
	if !w.check(HistogramType, labels) {
		return
	}
	w.sample("_sum", labels)
	w.b = appendFloat(w.b, sum)
	w.b = append(w.b, '\n')
	w.sample("_count", labels)
	w.b = strconv.AppendUint(w.b, count, 10)
	w.b = append(w.b, '\n')
}

// begin checks a counter's or gauge's sample and writes its name and
// labels.
func (w *Writer) begin(labels []string) bool {
	if w.typ == HistogramType {
		w.fail(errors.New("a plain sample in a histogram family"))
		return false
	}
	if !w.check(w.typ, labels) {
		return false
	}
	w.sample("", labels)
	return true
}

func (w *Writer) check(want Type, labels []string) bool {
	if w.typ != want {
		w.fail(fmt.Errorf("histogram samples in a %s family", w.typ))
		return false
	}
	if len(labels)%2 != 0 {
		w.fail(fmt.Errorf("label %q has no value", labels[len(labels)-1]))
		return false
	}
	for i := 0; i < len(labels); i += 2 {
		if !validLabelName(labels[i]) || labels[i] == "le" && want == HistogramType {
			w.fail(fmt.Errorf("bad label name %q", labels[i]))
			return false
		}
	}
	return true
}

// sample writes NAME<suffix>{labels} and the space before the value.
func (w *Writer) sample(suffix string, labels []string) {
	w.b = append(w.b, w.name...)
	w.b = append(w.b, suffix...)
	if len(labels) > 0 {
		w.b = append(w.b, '{')
		w.b = appendLabels(w.b, labels)
		w.b = append(w.b, '}')
	}
	w.b = append(w.b, ' ')
}

func (w *Writer) fail(err error) {
	if w.err == nil {
		w.err = fmt.Errorf("metrics: %s: %w", w.name, err)
	}
}

// appendLabels appends name="value" pairs separated by commas, each value
// escaped: "label_value can be any sequence of UTF-8 characters, but the
// backslash (\), double-quote ("), and line feed (\n) characters have to
// be escaped as \\, \", and \n" (text format 0.0.4).
func appendLabels(b []byte, labels []string) []byte {
	for i := 0; i < len(labels); i += 2 {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, labels[i]...)
		b = append(b, '=', '"')
		b = appendEscaped(b, labels[i+1], true)
		b = append(b, '"')
	}
	return b
}

// appendEscaped appends s with backslash and line feed escaped, and the
// double quote too when quote is set (label values; HELP text leaves it).
func appendEscaped(b []byte, s string, quote bool) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, '\\', '\\')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '"' && quote:
			b = append(b, '\\', '"')
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendFloat appends v as the format writes numbers: Go's shortest
// representation, and +Inf, -Inf and NaN.
func appendFloat(b []byte, v float64) []byte {
	switch {
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case math.IsNaN(v):
		return append(b, "NaN"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// validMetricName reports whether s matches [a-zA-Z_:][a-zA-Z0-9_:]*.
func validMetricName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}

// validLabelName reports whether s matches [a-zA-Z_][a-zA-Z0-9_]* and does
// not start with "__" (reserved).
func validLabelName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return s != "" && !(len(s) >= 2 && s[:2] == "__")
}
