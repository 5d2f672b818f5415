package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/gateway/control"
)

func controlList(ctx context.Context, c *control.Client, o controlOptions, pos []string, w io.Writer) error {
	if err := noArgs(pos); err != nil {
		return err
	}
	var q control.Query
	var err error
	if o.host != "" {
		if q.Host, err = control.ParseHost(o.host); err != nil {
			return fmt.Errorf("--host: %w", err)
		}
	}
	if o.protocol != "" {
		if q.Protocol, err = control.ParseProtocol(o.protocol); err != nil {
			return fmt.Errorf("--protocol: %w", err)
		}
	}
	if o.origin != "" {
		if q.Origin, err = control.ParseOrigin(o.origin); err != nil {
			return fmt.Errorf("--origin: %w", err)
		}
	}
	if o.ports != "" {
		if q.Ports, err = control.ParsePorts(o.ports); err != nil {
			return fmt.Errorf("--ports: %w", err)
		}
		q.HasPorts = true
	}
	ls, err := c.List(ctx, q)
	if err != nil {
		return err
	}
	if o.json {
		return printJSONTo(w, ls)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROTO\tEXTERNAL\tINTERNAL\tREMAINING\tORIGIN\tNONCE\tSHARE\tDESCRIPTION")
	pinholes := 0
	for _, l := range ls.Leases {
		if l.Pinhole {
			pinholes++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Protocol, externalText(l), l.Internal, remainingText(l),
			l.Origin, yesNo(l.NonceProtected), shareText(l), l.Description)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d leases (%d pinholes); external address %s\n", len(ls.Leases), pinholes, addrText(ls.ExternalAddress.String(), ls.ExternalAddress.IsValid()))
	return nil
}

// leaseKey reads "PROTO PORT" or "pinhole ID".
func leaseKey(pos []string) (p gateway.Protocol, port, id uint16, err error) {
	if len(pos) != 2 {
		return 0, 0, 0, fmt.Errorf("want PROTO PORT (such as tcp 40000) or pinhole ID")
	}
	if pos[0] == "pinhole" {
		id, err = control.ParsePinholeID(pos[1])
		return 0, 0, id, err
	}
	if p, err = control.ParseProtocol(pos[0]); err != nil {
		return 0, 0, 0, err
	}
	port, err = control.ParsePort(pos[1])
	return p, port, 0, err
}

func controlShow(ctx context.Context, c *control.Client, o controlOptions, pos []string, w io.Writer) error {
	p, port, id, err := leaseKey(pos)
	if err != nil {
		return err
	}
	var one control.One
	if id != 0 {
		one, err = c.Pinhole(ctx, id)
	} else {
		one, err = c.Lease(ctx, p, port)
	}
	if err != nil {
		return err
	}
	if o.json {
		return printJSONTo(w, one)
	}
	l := one.Lease
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("protocol", l.Protocol)
	if l.Pinhole {
		row("pinhole", strconv.Itoa(int(l.PinholeID)))
		row("port", strconv.Itoa(int(l.ExternalPort)))
	} else {
		row("external", fmt.Sprintf("%s:%d", addrText(one.ExternalAddress.String(), one.ExternalAddress.IsValid()), l.ExternalPort))
	}
	row("internal", l.Internal.String())
	row("origin", l.Origin)
	row("nonce protected", yesNo(l.NonceProtected))
	row("description", l.Description)
	filters := "any remote peer"
	if len(l.Filters) > 0 {
		filters = ""
		for i, f := range l.Filters {
			if i > 0 {
				filters += ", "
			}
			filters += f.Remote.String()
			if f.Port != 0 {
				filters += " port " + strconv.Itoa(int(f.Port))
			}
		}
	}
	row("filters", filters)
	row("created", l.Created.Local().Format(time.DateTime))
	if l.Expires != nil {
		row("expires", l.Expires.Local().Format(time.DateTime))
	}
	row("remaining", remainingText(l))
	row("host's share", shareText(l))
	return tw.Flush()
}

func controlDelete(ctx context.Context, c *control.Client, o controlOptions, pos []string, w io.Writer) error {
	var d control.Deleted
	var err error
	switch {
	case o.host != "" && len(pos) > 0:
		return fmt.Errorf("give --host ADDR or a lease, not both")
	case o.host != "":
		host, err := control.ParseHost(o.host)
		if err != nil {
			return fmt.Errorf("--host: %w", err)
		}
		if d, err = c.DeleteHost(ctx, host); err != nil {
			return err
		}
	default:
		p, port, id, err := leaseKey(pos)
		if err != nil {
			return err
		}
		if id != 0 {
			d, err = c.DeletePinhole(ctx, id)
		} else {
			d, err = c.Delete(ctx, p, port)
		}
		if err != nil {
			return err
		}
	}
	if o.json {
		return printJSONTo(w, d)
	}
	for _, l := range d.Deleted {
		fmt.Fprintf(w, "deleted %s %s -> %s (%s)\n", l.Protocol, externalText(l), l.Internal, l.Origin)
	}
	if o.host != "" {
		fmt.Fprintf(w, "%d leases of %s deleted\n", len(d.Deleted), o.host)
	}
	return err
}

func controlCounters(ctx context.Context, c *control.Client, o controlOptions, pos []string, w io.Writer) error {
	if err := noArgs(pos); err != nil {
		return err
	}
	n, err := c.Counters(ctx)
	if err != nil {
		return err
	}
	if o.json {
		return printJSONTo(w, n)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "LEASES\tNATPMP\tPCP\tUPNP\t")
	for _, r := range []struct {
		name string
		c    control.ByOrigin
	}{{"granted", n.Granted}, {"renewed", n.Renewed}, {"deleted", n.Deleted}, {"expired", n.Expired}} {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t\n", r.name, r.c.NATPMP, r.c.PCP, r.c.UPnP)
	}
	tw.Flush()
	fmt.Fprintln(w, "refused:")
	if len(n.Refused) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, reason := range slices.Sorted(maps.Keys(n.Refused)) {
		fmt.Fprintf(w, "  %s: %d\n", reason, n.Refused[reason])
	}
	fmt.Fprintf(w, "kernel transactions: %d (%d failed), %d mappings\n", n.Transactions, n.TransactionFailures, n.TransactionMappings)
	fmt.Fprint(w, "  by size:")
	for _, b := range n.TransactionSizes {
		fmt.Fprintf(w, " ≤%s: %d", b.LE, b.Count)
	}
	fmt.Fprintf(w, "\nstate file writes: %d (%d failed)\n", n.JournalCommits, n.JournalFailures)
	return nil
}

func externalText(l control.Lease) string {
	if l.Pinhole {
		return "pinhole " + strconv.Itoa(int(l.PinholeID))
	}
	return strconv.Itoa(int(l.ExternalPort))
}

func remainingText(l control.Lease) string {
	if l.Permanent {
		return "permanent"
	}
	return fmt.Sprintf("for %d s", l.Remaining)
}

func shareText(l control.Lease) string {
	if l.HostLimit == 0 {
		return strconv.Itoa(l.HostLeases) + "/none"
	}
	return fmt.Sprintf("%d/%d", l.HostLeases, l.HostLimit)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func addrText(s string, valid bool) string {
	if !valid {
		return "none yet"
	}
	return s
}
