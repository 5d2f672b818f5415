// Package metrics writes the gateway's metrics in the Prometheus text
// exposition format, version 0.0.4: counters, gauges and histograms with
// fixed buckets, each family with its HELP and TYPE lines, the families in
// name order, label values escaped as the format says (backslash, double
// quote and line feed).
//
// It is its own encoder, not github.com/prometheus/client_golang: a
// router's flash is small, and a program that serves client_golang's
// promhttp handler is several megabytes larger than one that serves this
// package (see the README); client_golang keeps a global default registry,
// which this project's style forbids (no package-level mutable state); and
// its scrape builds protocol-buffer messages for every sample before writing
// text, where this package appends the text of each sample to one reused
// buffer.
//
// There is no registry: a Set is a value made from a list of Family, each
// with a Collect function that writes its samples when the Set is scraped.
// Counter, Gauge and Histogram are values updated atomically, without a
// lock or an allocation, for the paths a request takes.
package metrics
