package main

import (
	"testing"
	"time"
)

const sampleLog = `time=2026-12-06T07:37:54.277Z level=INFO msg="state file loaded" path=/var/tmp/x/leases leases=3 expired=0 damaged=0 bytes=12
time=2026-12-06T07:37:54.282Z level=INFO msg="leases restored" restored=3 left_out=0 kernel_adopted=1 kernel_added=2 kernel_removed=0 damaged=0
time=2026-12-06T07:37:54.290Z level=INFO msg="serving NAT-PMP" listen=lan0 external=wan0
`

func TestLogAttrsReadsTheLeasesRestoredLine(t *testing.T) {
	attrs, ok := logAttrs(sampleLog, "leases restored")
	if !ok {
		t.Fatal(`no "leases restored" line found`)
	}
	for k, want := range map[string]string{"restored": "3", "kernel_adopted": "1", "kernel_added": "2", "kernel_removed": "0"} {
		if attrs[k] != want {
			t.Errorf("%s = %q, want %q", k, attrs[k], want)
		}
	}
	if _, ok := logAttrs(sampleLog, "leases"); ok {
		t.Error(`"leases" matched a line whose message only starts with it`)
	}
}

func TestLogTimeIsTheLineTime(t *testing.T) {
	got, ok := logTime(sampleLog, "serving NAT-PMP")
	want := time.Date(2026, 12, 6, 7, 37, 54, 290e6, time.UTC)
	if !ok || !got.Equal(want) {
		t.Errorf("logTime = %v, %v; want %v", got, ok, want)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		xs   []float64
		want float64
	}{{[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(c.xs); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.xs, got, c.want)
		}
	}
}
