package nftfw

import (
	"bytes"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
)

// CheckForwardPath lists the forward chains of the host's other tables
// (families inet and ip6, where IPv6 pinholes pass) that drop by default
// (policy drop) and hold no rule that accepts the mark bits mark, as
// ForwardAcceptRule(mark) writes it, neither themselves nor in the chains
// they jump or go to. What our table admits is dropped by each of them:
// portleased warns at start. netns is a file descriptor of the network
// namespace to look in, 0 for the caller's own; table is ours, which is
// not looked at. Each is described as "table inet filter chain forward".
func CheckForwardPath(netns int, table string, mark uint32) ([]string, error) {
	var opts []nftables.ConnOption
	if netns != 0 {
		opts = append(opts, nftables.WithNetNSFd(netns))
	}
	conn, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("nftfw: check forward path: %w", err)
	}
	chains, err := conn.ListChains()
	if err != nil {
		return nil, fmt.Errorf("nftfw: check forward path: list chains: %w", err)
	}
	var blocked []string
	for _, ch := range chains {
		fam := ch.Table.Family
		if fam != nftables.TableFamilyINet && fam != nftables.TableFamilyIPv6 ||
			fam == nftables.TableFamilyINet && ch.Table.Name == table ||
			ch.Hooknum == nil || *ch.Hooknum != *nftables.ChainHookForward ||
			ch.Policy == nil || *ch.Policy != nftables.ChainPolicyDrop {
			continue
		}
		ok, err := acceptsMark(conn, ch.Table, ch.Name, mark, map[string]bool{})
		if err != nil {
			return nil, fmt.Errorf("nftfw: check forward path: %w", err)
		}
		if !ok {
			blocked = append(blocked, fmt.Sprintf("table %s %s chain %s", familyName(fam), ch.Table.Name, ch.Name))
		}
	}
	return blocked, nil
}

// familyName is the nft name of a table family.
func familyName(f nftables.TableFamily) string {
	switch f {
	case nftables.TableFamilyINet:
		return "inet"
	case nftables.TableFamilyIPv6:
		return "ip6"
	case nftables.TableFamilyIPv4:
		return "ip"
	}
	return fmt.Sprintf("family-%d", f)
}

// acceptsMark reports whether chain of t, or a chain it jumps or goes to,
// has a rule `meta mark & mark == mark accept`. seen holds the chains
// already looked at.
func acceptsMark(conn *nftables.Conn, t *nftables.Table, chain string, mark uint32, seen map[string]bool) (bool, error) {
	if seen[chain] {
		return false, nil
	}
	seen[chain] = true
	rules, err := conn.GetRules(t, &nftables.Chain{Name: chain, Table: t})
	if err != nil {
		return false, fmt.Errorf("list rules of table %s chain %s: %w", t.Name, chain, err)
	}
	for _, r := range rules {
		if isMarkAccept(r.Exprs, mark) {
			return true, nil
		}
		for _, e := range r.Exprs {
			if v, ok := e.(*expr.Verdict); ok && (v.Kind == expr.VerdictJump || v.Kind == expr.VerdictGoto) {
				ok, err := acceptsMark(conn, t, v.Chain, mark, seen)
				if ok || err != nil {
					return ok, err
				}
			}
		}
	}
	return false, nil
}

// isMarkAccept reports whether exprs are ForwardAcceptRule(mark): meta
// mark loaded, masked with mark, compared equal to mark, accepted (a
// counter may come before the verdict). For a mark of one bit, nft may
// write the comparison as "!= 0".
func isMarkAccept(exprs []expr.Any, mark uint32) bool {
	var es []expr.Any
	for _, e := range exprs {
		if _, ok := e.(*expr.Counter); !ok {
			es = append(es, e)
		}
	}
	if len(es) != 4 {
		return false
	}
	m := binaryutil.NativeEndian.PutUint32(mark)
	meta, ok1 := es[0].(*expr.Meta)
	bw, ok2 := es[1].(*expr.Bitwise)
	cmp, ok3 := es[2].(*expr.Cmp)
	v, ok4 := es[3].(*expr.Verdict)
	return ok1 && ok2 && ok3 && ok4 &&
		meta.Key == expr.MetaKeyMARK && !meta.SourceRegister &&
		bytes.Equal(bw.Mask, m) && bytes.Equal(bw.Xor, make([]byte, 4)) &&
		(cmp.Op == expr.CmpOpEq && bytes.Equal(cmp.Data, m) ||
			mark&(mark-1) == 0 && cmp.Op == expr.CmpOpNeq && bytes.Equal(cmp.Data, make([]byte, 4))) &&
		v.Kind == expr.VerdictAccept
}
