package labpeers

import (
	"encoding/json"
	"errors"
	"fmt"
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
	return Firewall(t, host, "", "nft", args...)
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

// MapElements returns the elements of the one map in out, the output of
// `nft -j list map FAMILY TABLE NAME`, each as nft writes it in JSON. A
// map without elements has none; output without a map is an error.
func MapElements(out []byte) ([]json.RawMessage, error) {
	var doc struct {
		Nftables []struct {
			Map *struct {
				Elem []json.RawMessage `json:"elem"`
			} `json:"map"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("nft -j list map: %w", err)
	}
	for _, o := range doc.Nftables {
		if o.Map != nil {
			return o.Map.Elem, nil
		}
	}
	return nil, errors.New("nft -j list map: no map in the output")
}
