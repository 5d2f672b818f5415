package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/portlease/portlease/internal/cliflags"

	"github.com/portlease/portlease/client"
	"github.com/portlease/portlease/internal/daemon"
	"github.com/portlease/portlease/internal/syslogx"
	"github.com/portlease/portlease/mapfile"
)

const keepHelp = `Usage: portlease keep -f FILE [options]

keep reads port mappings from FILE and keeps them open on the router: it maps
each one, renews it before its lease ends, and maps it again at once when the
router loses it (a reboot, a wiped table; over PCP, told by the router's
announcement, after a random wait of up to 5 s, RFC 6887 §14.1.1). Over PCP a
restarted keep renews the mappings of the last run (see --nonce-key). FILE is
read again every interval and as soon as it changes. It takes upnp-daemon's
flags and files unchanged.

FILE is CSV with a header line naming the columns (matched by name, in any
order), by default separated by semicolons:

  address;port;protocol;duration;comment
  ;8080;TCP;3600;web server
  192.168.1.20;27015;UDP;3600;game server on another machine

  address   empty: this machine (every interface is tried until a gateway
            succeeds); an address: that device (UPnP only, NAT-PMP maps only
            the asking host); a CIDR range: this machine's address in it.
  port      1-65535, the same inside and outside.
  protocol  TCP or UDP.
  duration  the lease in seconds (0: permanent, UPnP).
  comment   stored with the mapping on the router (UPnP).

A bad line is reported with its line number and skipped; the others apply. If
the file cannot be read while keep runs, the last good set stays.

Options:
  -f, --file FILE         The mapping file; - reads standard input once (with
                          --foreground or --oneshot).
  --format csv|json       The file's format (default csv). JSON is an array of
                          objects with the same keys.
  -d, --csv-delimiter C   The CSV separator (default ;).
  -F, --foreground        Stay in the foreground and log to standard error.
                          Without it, keep detaches and logs to syslog, or to
                          --log-file. On Windows keep never detaches: it runs
                          in the foreground, or as a service when the service
                          control manager starts it, and then logs to the
                          Event Log.
  -1, --oneshot           Map every line once and exit (status 2 if any line
                          failed).
  -n, --interval SECONDS  How often to read the file again and check that the
                          mappings still exist on the router (default 60).
  --close-ports-on-exit   Delete the mappings on exit (SIGINT, SIGTERM, SIGHUP).
  --only-close-ports      Delete the mappings of the file and exit.
  --pid-file FILE         Lock this file and write the PID in it: one instance
                          per file. A symbolic link there is refused. Default:
                          keep.pid in the runtime directory:
                          $XDG_RUNTIME_DIR/portlease, else /run/portlease
                          (Linux) or /var/run/portlease (BSDs) for root, else
                          $XDG_CACHE_HOME/portlease or ~/.cache/portlease; on
                          macOS /var/run/portlease for root, else
                          $TMPDIR/portlease or ~/Library/Caches/portlease; on
                          Windows %LOCALAPPDATA%\portlease.
  --log-file FILE         Append the log to FILE instead of syslog.
  --on-conflict keep|replace
                          When another host holds an external port: keep
                          (default) reports it; replace deletes that mapping
                          and takes the port, as upnp-daemon does.
`

const keepChildEnv = "PORTLEASE_KEEP_DETACHED=1"

type keepOptions struct {
	file, format, delimiter string
	foreground, oneshot     bool
	interval                uint
	closeOnExit, onlyClose  bool
	pidFile, logFile        string
	onConflict              string
	nonceKey                string
	clientFlags
}

// keepPIDFile is the default PID file's name in the runtime directory.
const keepPIDFile = "keep.pid"

func runKeep(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if underServiceManager() {
		return runService(ctx, func(ctx context.Context, ready func()) int {
			return keep(ctx, args, nil, stdout, stderr, keepMode{service: true, ready: ready})
		})
	}
	return keep(ctx, args, stdin, stdout, stderr, keepMode{ready: func() {}})
}

// keepMode is how keep was started: by the user, or as a Windows service
// (ready tells the service control manager that it runs).
type keepMode struct {
	service bool
	ready   func()
}

func keep(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, mode keepMode) int {
	if mode.service {
		// Nothing reads standard error under the service control manager:
		// what keep would print there goes to the Event Log.
		if h, err := syslogx.New("portlease", slog.LevelError); err == nil {
			defer h.Close()
			stderr = logWriter{slog.New(h)}
		}
	}
	var o keepOptions
	fs := flag.NewFlagSet("portlease keep", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	for _, name := range []string{"f", "file"} {
		fs.StringVar(&o.file, name, "", "")
	}
	fs.StringVar(&o.format, "format", "csv", "")
	for _, name := range []string{"d", "csv-delimiter"} {
		fs.StringVar(&o.delimiter, name, ";", "")
	}
	for _, name := range []string{"F", "foreground"} {
		fs.BoolVar(&o.foreground, name, false, "")
	}
	for _, name := range []string{"1", "oneshot"} {
		fs.BoolVar(&o.oneshot, name, false, "")
	}
	for _, name := range []string{"n", "interval"} {
		fs.UintVar(&o.interval, name, 60, "")
	}
	fs.BoolVar(&o.closeOnExit, "close-ports-on-exit", false, "")
	fs.BoolVar(&o.onlyClose, "only-close-ports", false, "")
	fs.StringVar(&o.pidFile, "pid-file", "", "")
	fs.StringVar(&o.logFile, "log-file", "", "")
	fs.StringVar(&o.onConflict, "on-conflict", "keep", "")
	fs.StringVar(&o.nonceKey, "nonce-key", "", "")
	o.clientFlags.register(fs, "info")
	pos, err := cliflags.ParseInterleaved(fs, args)
	if err != nil {
		return handleParseError(err, "keep", keepHelp+fmt.Sprintf(nonceKeyHelp, nonceKeyLen)+"\n"+clientFlagsHelp, stdout, stderr)
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "portlease keep: %v\n", err)
		daemon.Fail(keepChildEnv, err)
		return 1
	}
	if len(pos) > 0 {
		return fail(fmt.Errorf("unexpected argument %q", pos[0]))
	}
	k, err := newKeeper(o, stdin)
	if err != nil {
		return fail(err)
	}
	background := daemon.CanDetach && !o.foreground && !o.oneshot && !o.onlyClose
	if background && o.file == "-" {
		return fail(errors.New("--file -: reading standard input needs --foreground or --oneshot"))
	}
	// Read the file before detaching, so that a missing or broken file is
	// reported where the user sees it.
	if err := k.load(); err != nil {
		return fail(err)
	}
	if background && !daemon.IsChild(keepChildEnv) {
		if err := daemon.Detach(keepChildEnv, stderr); err != nil {
			fmt.Fprintf(stderr, "portlease keep: %v\n", err)
			return 1
		}
		return 0
	}

	level, err := logLevel(o.logLevel)
	if err != nil {
		return fail(err)
	}
	var handler slog.Handler
	switch {
	case o.logFile != "":
		f, err := os.OpenFile(o.logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return fail(fmt.Errorf("--log-file: %w", err))
		}
		defer f.Close()
		handler = slog.NewTextHandler(f, &slog.HandlerOptions{Level: level})
	case background || mode.service:
		h, err := syslogx.New("portlease", level)
		if err != nil {
			daemon.Warn(keepChildEnv, fmt.Sprintf("portlease keep: warning: %v; its log is lost (use --log-file or --foreground)", err))
			handler = slog.DiscardHandler
		} else {
			defer h.Close()
			handler = h
		}
	default:
		handler = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})
	}
	k.log = slog.New(handler)
	k.reportBadLines()

	if !o.oneshot && !o.onlyClose {
		if o.pidFile == "" {
			if o.pidFile, err = daemon.DefaultPIDFile(keepPIDFile); err != nil {
				return fail(fmt.Errorf("the default --pid-file: %w", err))
			}
		}
		pid, err := daemon.WritePIDFile(o.pidFile)
		if err != nil {
			if errors.Is(err, daemon.ErrLocked) {
				err = fmt.Errorf("another portlease keep is running with --pid-file %s: %w", o.pidFile, err)
			}
			return fail(err)
		}
		defer pid.Remove()
	}

	cfg, err := o.clientFlags.config(k.log)
	if err != nil {
		return fail(err)
	}
	cfg.CheckInterval = time.Duration(o.interval) * time.Second
	if err := applyNonceKey(&cfg, o.nonceKey); err != nil {
		return fail(err)
	}
	c, err := client.New(cfg)
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	k.client = c

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	switch {
	case o.onlyClose:
		return k.closeAll(ctx)
	case o.oneshot:
		return k.mapOnce(ctx)
	}
	daemon.Ready(keepChildEnv)
	mode.ready()
	return k.run(ctx)
}

// keeper is the state of `portlease keep`.
type keeper struct {
	o      keepOptions
	stdin  io.Reader
	opts   mapfile.Options
	policy client.ConflictPolicy
	log    *slog.Logger
	client *client.Client

	entries []mapfile.Entry
	bad     []*mapfile.LineError
	kept    map[string]*keptMapping
}

type keptMapping struct {
	entry   mapfile.Entry
	mapping *client.Mapping
}

func newKeeper(o keepOptions, stdin io.Reader) (*keeper, error) {
	if o.file == "" {
		return nil, errors.New("no mapping file: give one with -f FILE")
	}
	format, err := mapfile.ParseFormat(o.format)
	if err != nil {
		return nil, fmt.Errorf("--format: %w", err)
	}
	delim := []rune(o.delimiter)
	if len(delim) != 1 {
		return nil, fmt.Errorf("--csv-delimiter %q: want one character", o.delimiter)
	}
	if o.interval == 0 {
		return nil, errors.New("--interval 0: want at least 1 second")
	}
	k := &keeper{o: o, stdin: stdin, kept: make(map[string]*keptMapping), log: slog.New(slog.DiscardHandler)}
	k.opts = mapfile.Options{Format: format, Delimiter: delim[0], Name: o.file}
	switch o.onConflict {
	case "keep":
		k.policy = client.ConflictKeep
	case "replace":
		k.policy = client.ConflictReplace
	default:
		return nil, fmt.Errorf("--on-conflict %q: want keep or replace", o.onConflict)
	}
	return k, nil
}

// load reads the file. An error means it could not be read at all; bad
// lines are kept in k.bad.
func (k *keeper) load() error {
	var entries []mapfile.Entry
	var bad []*mapfile.LineError
	var err error
	if k.o.file == "-" {
		if k.stdin == nil {
			return errors.New("standard input was read already")
		}
		entries, bad, err = mapfile.Read(k.stdin, k.opts)
		k.stdin = nil
	} else {
		entries, bad, err = mapfile.ReadFile(k.o.file, k.opts)
	}
	if err != nil {
		return err
	}
	k.entries, k.bad = entries, bad
	return nil
}

func (k *keeper) reportBadLines() {
	for _, e := range k.bad {
		k.log.Error("skipping a bad line", "error", e.Error())
	}
}

// request turns a file entry into a client request.
func (k *keeper) request(e mapfile.Entry) (client.Request, error) {
	r := client.Request{
		Protocol:     client.Protocol(e.Protocol),
		InternalPort: e.Port,
		ExternalPort: e.Port,
		Lifetime:     e.Duration,
		Description:  e.Comment,
		OnConflict:   k.policy,
	}
	switch {
	case e.Addr.IsValid():
		r.InternalAddr = e.Addr
	case e.Prefix.IsValid():
		a, err := localAddressIn(e.Prefix)
		if err != nil {
			return r, fmt.Errorf("%s:%d: address: %w", k.o.file, e.Line, err)
		}
		r.InternalAddr = a
	}
	return r, nil
}

// localAddressIn returns an address of this machine inside p.
func localAddressIn(p netip.Prefix) (netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok && p.Contains(ip.Unmap()) {
				return ip.Unmap(), nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("no address of this machine lies in %s", p)
}

// mapOnce maps every line once (--oneshot).
func (k *keeper) mapOnce(ctx context.Context) int {
	failed := len(k.bad)
	for _, e := range k.entries {
		r, err := k.request(e)
		if err == nil {
			var res client.Result
			res, err = k.client.Map(ctx, r)
			if err == nil {
				k.log.Info("mapped", "line", e.Line, "protocol", res.Protocol, "external", res.External.String(),
					"internal", res.Internal.String(), "lifetime", res.Lifetime, "via", res.Method)
				continue
			}
		}
		failed++
		k.log.Error("mapping failed", "line", fmt.Sprintf("%s:%d", k.o.file, e.Line), "mapping", e.String(), "err", err)
	}
	if failed > 0 {
		return exitPartial
	}
	return 0
}

// closeAll deletes the mapping of every line (--only-close-ports).
func (k *keeper) closeAll(ctx context.Context) int {
	failed := len(k.bad)
	for _, e := range k.entries {
		r, err := k.request(e)
		if err == nil {
			err = k.client.Unmap(ctx, r)
		}
		if err != nil && !errors.Is(err, client.ErrNotFound) {
			failed++
			k.log.Error("deleting failed", "line", fmt.Sprintf("%s:%d", k.o.file, e.Line), "mapping", e.String(), "err", err)
			continue
		}
		k.log.Info("deleted", "line", e.Line, "mapping", e.String())
	}
	if failed > 0 {
		return exitPartial
	}
	return 0
}

// run keeps the file's mappings until a signal (the daemon).
func (k *keeper) run(ctx context.Context) int {
	k.log.Info("keeping mappings", "file", k.o.file, "lines", len(k.entries), "bad_lines", len(k.bad),
		"interval", time.Duration(k.o.interval)*time.Second, "pid", os.Getpid())
	k.reconcile(ctx)
	changed := make(chan struct{}, 1)
	if k.o.file != "-" {
		go watchFile(ctx, k.o.file, changed, k.log)
	}
	tick := time.NewTicker(time.Duration(k.o.interval) * time.Second)
	defer tick.Stop()
	events := k.client.Events()
	for {
		select {
		case <-ctx.Done():
			k.shutdown()
			return 0
		case ev := <-events:
			k.logEvent(ev)
		case <-changed:
			k.reload(ctx, "the file changed")
		case <-tick.C:
			k.reload(ctx, "interval")
		}
	}
}

func (k *keeper) reload(ctx context.Context, why string) {
	if k.o.file == "-" {
		return
	}
	if err := k.load(); err != nil {
		k.log.Error("cannot read the mapping file; keeping the last good set", "err", err, "mappings", len(k.kept))
		return
	}
	k.log.Debug("read the mapping file", "why", why, "lines", len(k.entries), "bad_lines", len(k.bad))
	k.reportBadLines()
	k.reconcile(ctx)
}

// reconcile starts keeping new lines and stops (and deletes) the mappings of
// lines no longer in the file.
func (k *keeper) reconcile(ctx context.Context) {
	want := make(map[string]mapfile.Entry, len(k.entries))
	for _, e := range k.entries {
		want[e.Key()] = e
	}
	for key, km := range k.kept {
		if e, ok := want[key]; ok && e.Duration == km.entry.Duration && e.Comment == km.entry.Comment {
			continue
		}
		if err := km.mapping.Close(ctx); err != nil && !errors.Is(err, client.ErrNotFound) {
			k.log.Warn("deleting a mapping no longer in the file", "mapping", km.entry.String(), "err", err)
		} else {
			k.log.Info("deleted a mapping no longer in the file", "mapping", km.entry.String())
		}
		delete(k.kept, key)
	}
	for key, e := range want {
		if _, ok := k.kept[key]; ok {
			continue
		}
		r, err := k.request(e)
		if err != nil {
			k.log.Error("skipping a line", "error", err)
			continue
		}
		m, err := k.client.Keep(ctx, r)
		if m == nil {
			k.log.Error("cannot keep a mapping", "line", fmt.Sprintf("%s:%d", k.o.file, e.Line), "mapping", e.String(), "err", err)
			continue
		}
		if err != nil {
			k.log.Warn("first attempt failed; will retry", "line", fmt.Sprintf("%s:%d", k.o.file, e.Line), "mapping", e.String(), "err", err)
		}
		k.kept[key] = &keptMapping{entry: e, mapping: m}
	}
}

func (k *keeper) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, km := range k.kept {
		if !k.o.closeOnExit {
			km.mapping.Stop()
			continue
		}
		if err := km.mapping.Close(ctx); err != nil && !errors.Is(err, client.ErrNotFound) {
			k.log.Warn("deleting on exit", "mapping", km.entry.String(), "err", err)
			continue
		}
		k.log.Info("deleted on exit", "mapping", km.entry.String())
	}
	k.log.Info("stopped")
}

func (k *keeper) logEvent(ev client.Event) {
	attrs := []any{"protocol", ev.Request.Protocol, "port", ev.Request.InternalPort}
	if ev.Result.External.IsValid() {
		attrs = append(attrs, "external", ev.Result.External.String(), "via", ev.Result.Method, "lifetime", ev.Result.Lifetime)
	}
	if ev.Err != nil {
		attrs = append(attrs, "err", ev.Err)
	}
	switch ev.Kind {
	case client.Mapped:
		k.log.Info("mapped", attrs...)
	case client.Renewed:
		k.log.Debug("renewed", attrs...)
	case client.Recreated:
		k.log.Warn("the router had lost the mapping; mapped again", attrs...)
	case client.Failed:
		k.log.Error("mapping failed", attrs...)
	case client.ExternalAddressChanged:
		k.log.Info("external address", "addr", ev.ExternalAddress, "gateway", ev.Gateway)
	case client.DoubleNATDetected:
		k.log.Warn("the router's external address is not public: mappings are not reachable from the internet (double NAT)",
			"addr", ev.ExternalAddress, "gateway", ev.Gateway)
	default:
		k.log.Info(strings.ToLower(ev.Kind.String()), attrs...)
	}
}

// watchFile signals changed whenever the file at path is written, replaced
// or created, watching its directory (editors replace files).
func watchFile(ctx context.Context, path string, changed chan<- struct{}, log *slog.Logger) {
	w, err := newDirWatcher(filepath.Dir(path))
	if errors.Is(err, errors.ErrUnsupported) {
		log.Debug("the mapping file is read every interval", "why", err)
		return
	}
	if err != nil {
		log.Warn("cannot watch the mapping file; it is read every interval", "err", err)
		return
	}
	go func() {
		<-ctx.Done()
		w.Close()
	}()
	base := filepath.Base(path)
	for {
		name, err := w.next()
		if err != nil {
			return
		}
		if name == base {
			select {
			case changed <- struct{}{}:
			default:
			}
		}
	}
}
