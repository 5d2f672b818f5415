package mapfile_test

import (
	"fmt"
	"strings"

	"github.com/portlease/portlease/mapfile"
)

func ExampleRead() {
	// upnp-daemon's README example, one bad line added.
	const ports = `address;port;protocol;duration;comment
192.168.0.10;12345;UDP;60;Test 1
;12346;TCP;60;Test 2
192.168.0.0/24;12347;udp;3600;"range; quoted"
;70000;TCP;60;Test 4
`
	entries, bad, err := mapfile.Read(strings.NewReader(ports), mapfile.Options{Name: "ports.csv"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range entries {
		fmt.Printf("line %d: %v\n", e.Line, e)
	}
	for _, e := range bad {
		fmt.Println("skipped:", e)
	}
	// Output:
	// line 2: UDP 12345 -> 192.168.0.10 (60 s, "Test 1")
	// line 3: TCP 12346 -> this host (60 s, "Test 2")
	// line 4: UDP 12347 -> this host in 192.168.0.0/24 (3600 s, "range; quoted")
	// skipped: ports.csv:5: port: "70000" is not a port (1-65535)
}

func ExampleRead_json() {
	const ports = `[
  {"address": "192.168.0.10", "port": 12345, "protocol": "UDP", "duration": 60, "comment": "Test 1"},
  {"port": "12346", "protocol": "TCP", "duration": 60, "comment": "Test 2"}
]`
	entries, bad, err := mapfile.Read(strings.NewReader(ports), mapfile.Options{Format: mapfile.JSON, Name: "ports.json"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(entries)
	fmt.Println(bad)
	// Output:
	// [UDP 12345 -> 192.168.0.10 (60 s, "Test 1")]
	// [ports.json:3: port: want a number, got the string "12346"]
}
