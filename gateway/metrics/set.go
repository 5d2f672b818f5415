package metrics

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// ContentType is the media type of the text format 0.0.4.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Family is one metric family: its name, help text, type, and the function
// that writes its samples at each scrape. Collect is called with the
// Writer positioned on the family; it may write no sample (the family then
// shows its HELP and TYPE alone).
type Family struct {
	Name    string
	Help    string
	Type    Type
	Collect func(w *Writer)
}

// Set is a fixed list of families, written in name order. It is safe for
// concurrent scrapes.
type Set struct {
	families []Family
	writers  sync.Pool // *Writer, with the buffer of an earlier scrape
}

// NewSet returns the set of the families given, which must have valid,
// distinct names, a type and a Collect function.
func NewSet(families ...Family) (*Set, error) {
	fs := slices.Clone(families)
	slices.SortFunc(fs, func(a, b Family) int { return strings.Compare(a.Name, b.Name) })
	for i, f := range fs {
		switch {
		case !validMetricName(f.Name):
			return nil, fmt.Errorf("metrics: bad family name %q", f.Name)
		case i > 0 && fs[i-1].Name == f.Name:
			return nil, fmt.Errorf("metrics: family %s twice", f.Name)
		case f.Type < CounterType || f.Type > HistogramType:
			return nil, fmt.Errorf("metrics: family %s has no type", f.Name)
		case f.Collect == nil:
			return nil, fmt.Errorf("metrics: family %s has no Collect", f.Name)
		}
	}
	return &Set{families: fs}, nil
}

// AppendText appends the exposition of every family to b: for each, in
// name order, "# HELP name text", "# TYPE name type" and its samples. An
// error (a Collect that wrote a bad sample) comes with what was written
// without that sample.
func (s *Set) AppendText(b []byte) ([]byte, error) {
	w := s.writer()
	defer s.writers.Put(w)
	saved := w.b
	w.b = b
	s.write(w)
	b, err := w.b, w.err
	w.b = saved
	return b, err
}

// writer returns a Writer of the pool, reset, with its buffer emptied.
func (s *Set) writer() *Writer {
	w, _ := s.writers.Get().(*Writer)
	if w == nil {
		w = new(Writer)
	}
	*w = Writer{b: w.b[:0]}
	return w
}

// write writes every family with w.
func (s *Set) write(w *Writer) {
	for _, f := range s.families {
		w.b = append(w.b, "# HELP "...)
		w.b = append(w.b, f.Name...)
		w.b = append(w.b, ' ')
		w.b = appendEscaped(w.b, f.Help, false)
		w.b = append(w.b, "\n# TYPE "...)
		w.b = append(w.b, f.Name...)
		w.b = append(w.b, ' ')
		w.b = append(w.b, f.Type.String()...)
		w.b = append(w.b, '\n')
		w.name, w.typ = f.Name, f.Type
		f.Collect(w)
	}
}

// ServeHTTP answers GET and HEAD with the exposition (Content-Type
// ContentType), other methods with 405. A bad sample is left out, and the
// answer is a 500 error, so that a scrape never takes half a family for
// the whole.
func (s *Set) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	sw := s.writer()
	defer s.writers.Put(sw)
	s.write(sw)
	if sw.err != nil {
		http.Error(w, sw.err.Error(), http.StatusInternalServerError)
		return
	}
	b := sw.b
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}
