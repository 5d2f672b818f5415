package nftfw

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Generation returns the ruleset's generation ID in the Firewall's network
// namespace (NFT_MSG_GETGEN), which every committed nftables transaction,
// ours or another program's, moves on. Reading it before and after a
// stretch of time tells whether anything changed meanwhile.
func (f *Firewall) Generation() (uint32, error) {
	s, err := dialNF(f.netns)
	if err != nil {
		return 0, fmt.Errorf("nftfw: generation: %w", err)
	}
	defer s.close()
	seq := s.nextSeq()
	b, start := appendMsgHeader(nil, unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETGEN, unix.NLM_F_REQUEST, seq)
	b = appendNfgen(b, unix.AF_UNSPEC, 0)
	endMsg(b, start)
	if err := s.send(b); err != nil {
		return 0, fmt.Errorf("nftfw: generation: %w", err)
	}
	for {
		b, err := s.recv()
		if err != nil {
			return 0, fmt.Errorf("nftfw: generation: %w", err)
		}
		for {
			m, rest, ok, err := nextMsg(b)
			if err != nil {
				return 0, fmt.Errorf("nftfw: generation: %w", err)
			}
			if !ok {
				break
			}
			b = rest
			switch {
			case m.seq != seq:
			case m.typ == unix.NLMSG_ERROR:
				return 0, fmt.Errorf("nftfw: generation: %w", errnoOf(m))
			case m.typ == unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWGEN:
				return decodeGen(m.payload)
			}
		}
	}
}

// decodeGen returns NFTA_GEN_ID of the payload of a NFT_MSG_NEWGEN
// message: a struct nfgenmsg, then attributes.
func decodeGen(b []byte) (uint32, error) {
	if len(b) < nfgenmsgLen {
		return 0, errors.New("nftfw: generation: short message")
	}
	for b = b[nfgenmsgLen:]; ; {
		typ, payload, rest, ok, err := nextAttr(b)
		if err != nil {
			return 0, fmt.Errorf("nftfw: generation: %w", err)
		}
		if !ok {
			return 0, errors.New("nftfw: generation: no NFTA_GEN_ID")
		}
		if typ == unix.NFTA_GEN_ID && len(payload) == 4 {
			return binary.BigEndian.Uint32(payload), nil
		}
		b = rest
	}
}
