package labpeers

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/portlease/portlease/internal/netlab"
)

// NFT runs nft with args in host's namespace and returns what it prints on
// its standard output. The test fails, with nft's standard error, when nft
// fails or runs longer than 30 s: a reading of the kernel that could not be
// made is never an empty one.
func NFT(t testing.TB, host *netlab.Host, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := host.Command(ctx, "nft", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("labpeers: nft %s in %s: %v: %s", strings.Join(args, " "), host.NS, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String()
}

// NFTHasTable reports whether host's namespace holds table "family name",
// as `nft list tables` lists it; the test fails when nft does.
func NFTHasTable(t testing.TB, host *netlab.Host, family, name string) bool {
	t.Helper()
	want := "table " + family + " " + name
	for line := range strings.Lines(NFT(t, host, "list", "tables")) {
		if strings.TrimSpace(line) == want {
			return true
		}
	}
	return false
}
