package natpmp

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// TestParseResponseErrors feeds ParseResponse packets a client must refuse.
func TestParseResponseErrors(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want error
	}{
		{"empty", "", ErrShortPacket},
		{"1 byte", "00", ErrShortPacket},
		{"header 7 bytes", "00 80 0000 00000e", ErrShortPacket},
		{"external address success 8 bytes", "00 80 0000 00000e10", ErrShortPacket},
		{"external address 11 bytes", "00 80 0000 00000e10 cb0071", ErrShortPacket},
		{"external address 13 bytes", "00 80 0000 00000e10 cb007101 00", ErrLongPacket},
		{"external address error 10 bytes", "00 80 0003 00000e10 0000", ErrShortPacket},
		{"external address 16 bytes", "00 80 0000 00000e10 cb007101 00000000", ErrLongPacket},
		{"mapping success 8 bytes", "00 81 0000 00000e10", ErrShortPacket},
		{"mapping 12 bytes", "00 82 0000 00000e10 0050 0050", ErrShortPacket},
		{"mapping 15 bytes", "00 81 0000 00000e10 c8d5 f000 000007", ErrShortPacket},
		{"mapping 17 bytes", "00 81 0000 00000e10 c8d5 f000 00000708 00", ErrLongPacket},
		{"mapping error 12 bytes", "00 82 0004 00000e10 0050 0000", ErrShortPacket},
		{"version 1", "01 80 0000 00000e10 cb007101", ErrVersion},
		{"version 2: PCP server (RFC 6887 §9)", "02 81 0001 00000000 00000e10 00000000 00000000 00000000", ErrPCPServer},
		{"version 2, 2 bytes", "02 80", ErrPCPServer},
		{"version 255", "ff 80 0001 00000e10", ErrVersion},
		{"a request: external address", "00 00", ErrNotResponse},
		{"a request: map TCP", "00 02 0000 0050 0050 00001c20", ErrNotResponse},
		{"no response bit, result 1 but 12 bytes", "00 00 0001 00000e10 00000000", ErrNotResponse},
		{"no response bit, opcode 1, result 1", "00 01 0001 00000e10", ErrNotResponse},
		{"no response bit, opcode 0, result 5", "00 00 0005 00000e10", ErrNotResponse},
		{"unknown opcode with success", "00 83 0000 00000e10", ErrOpcode},
		{"unknown opcode 227 with success, 12 bytes", "00 e3 0000 00000e10 00000000", ErrOpcode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkt := unhex(t, tt.hex)
			got, err := ParseResponse(pkt)
			if !errors.Is(err, tt.want) {
				t.Errorf("ParseResponse(%x) = %+v, %v; want %v", pkt, got, err, tt.want)
			}
			if got != (Response{}) {
				t.Errorf("ParseResponse(%x) = %+v with an error; want the zero Response", pkt, got)
			}
		})
	}
}

// TestParseResponseLenient covers the replies ParseResponse takes beyond
// the golden packets.
func TestParseResponseLenient(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want Response
	}{
		{
			name: "§3.5 as first printed: opcode 0, no response bit (erratum 3618)",
			hex:  "00 00 0001 00000e10",
			want: Response{
				Header:          ResponseHeader{Opcode: OpExternalAddress, ResultCode: UnsupportedVersion, Epoch: 3600},
				ExternalAddress: ExternalAddressResponse{ResultCode: UnsupportedVersion, Epoch: 3600},
			},
		},
		{
			name: "§3.5 header-only failure of a TCP mapping",
			hex:  "00 82 0003 00000e10",
			want: Response{
				Header:  ResponseHeader{Opcode: OpMapTCP, ResultCode: NetworkFailure, Epoch: 3600},
				Mapping: MappingResponse{Opcode: OpMapTCP, ResultCode: NetworkFailure, Epoch: 3600},
			},
		},
		{
			name: "§3.5 unsupported opcode echo, header only",
			hex:  "00 83 0005 00000e10",
			want: Response{Header: ResponseHeader{Opcode: 3, ResultCode: UnsupportedOpcode, Epoch: 3600}},
		},
		{
			name: "§3.5 undefined result code on an unknown opcode",
			hex:  "00 90 0063 00000001 ff",
			want: Response{Header: ResponseHeader{Opcode: 16, ResultCode: 99, Epoch: 1}},
		},
		{
			name: "§3.5 undefined result code on a mapping",
			hex:  "00 81 0063 00000001 c8d5 0000 00000000",
			want: Response{
				Header:  ResponseHeader{Opcode: OpMapUDP, ResultCode: 99, Epoch: 1},
				Mapping: MappingResponse{Opcode: OpMapUDP, ResultCode: 99, Epoch: 1, InternalPort: 51413},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkt := unhex(t, tt.hex)
			got, err := ParseResponse(pkt)
			if err != nil || got != tt.want {
				t.Errorf("ParseResponse(%x) = %+v, %v; want %+v", pkt, got, err, tt.want)
			}
			var re *ResultError
			if !errors.As(got.Err(), &re) || re.Code != tt.want.Header.ResultCode || re.Op != tt.want.Header.Opcode {
				t.Errorf("ParseResponse(%x).Err() = %v; want a *ResultError for %v, %v",
					pkt, got.Err(), tt.want.Header.Opcode, tt.want.Header.ResultCode)
			}
		})
	}
}

func TestRetransmitIntervals(t *testing.T) {
	want := []time.Duration{
		250 * time.Millisecond,
		500 * time.Millisecond,
		time.Second,
		2 * time.Second,
		4 * time.Second,
		8 * time.Second,
		16 * time.Second,
		32 * time.Second,
		64 * time.Second,
	}
	if got := RetransmitIntervals(); !slices.Equal(got, want) {
		t.Errorf("RetransmitIntervals() = %v; want %v", got, want)
	}
}

// TestStateLost checks the epoch rule of RFC 6886 §3.6 on given numbers; no
// clock is read.
func TestStateLost(t *testing.T) {
	tests := []struct {
		name    string
		last    uint32
		elapsed time.Duration
		got     uint32
		want    bool
	}{
		{"same packet again", 100, 0, 100, false},
		{"clock in step", 100, 80 * time.Second, 180, false},
		{"gateway clock 1/8 slow is allowed", 100, 80 * time.Second, 170, false},
		{"2 s below the estimate is allowed", 100, 80 * time.Second, 168, false},
		{"more than 2 s below the estimate", 100, 80 * time.Second, 167, true},
		{"epoch restarted at 0 (reboot)", 3600, 10 * time.Second, 0, true},
		{"epoch restarted, little time", 3, 0, 0, true},
		{"small epochs, 2 s back", 2, 0, 0, false},
		{"gateway ahead", 100, time.Second, 5000, false},
		{"elapsed below a second counts: 2.4375 s below", 10, 500 * time.Millisecond, 8, true},
		{"elapsed below a second counts: 1.4375 s below", 10, 500 * time.Millisecond, 9, false},
		{"negative elapsed counts as 0", 10, -time.Hour, 8, false},
		{"negative elapsed, reboot", 10, -time.Hour, 7, true},
		{"largest epoch and elapsed time: no overflow", 1<<32 - 1, time.Duration(1<<63 - 1), 1<<32 - 1, true},
		{"largest epoch, no time", 1<<32 - 1, 0, 1<<32 - 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := StateLost(tt.last, tt.elapsed, tt.got); got != tt.want {
				t.Errorf("StateLost(%d, %v, %d) = %v; want %v", tt.last, tt.elapsed, tt.got, got, tt.want)
			}
		})
	}
}
