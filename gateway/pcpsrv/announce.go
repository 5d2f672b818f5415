package pcpsrv

import "github.com/portlease/portlease/pcp"

// Announcement appends to out the unsolicited ANNOUNCE response that tells
// clients the server's epoch (RFC 6887 §14.1.3), for the NAT-PMP front-end
// to send to 224.0.0.1:5350 and [ff02::1]:5350 on every LAN link after a
// start, an external address change or a new epoch.
func (s *Server) Announcement(out []byte) []byte {
	return s.announcement(out, s.Table.Epoch())
}

// announcement appends an ANNOUNCE response of epoch: SUCCESS, lifetime 0,
// no opcode data (§14.1.1).
func (s *Server) announcement(out []byte, epoch uint32) []byte {
	b, err := pcp.Response{Opcode: pcp.OpAnnounce, Result: pcp.Success, Epoch: epoch}.AppendBinary(out)
	if err != nil {
		s.logger().Error("pcp: ANNOUNCE not encoded", "err", err)
		return nil
	}
	return b
}
