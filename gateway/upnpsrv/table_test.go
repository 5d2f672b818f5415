package upnpsrv

import (
	"reflect"
	"testing"

	"github.com/portlease/portlease/gateway"
)

// TestTableMethods: when the lease core has the ordered and watch methods,
// the server uses them; a method of that name with another signature would
// silently leave the server on its fallbacks.
func TestTableMethods(t *testing.T) {
	table := gateway.New(gateway.Config{})
	lt := newLeaseTable(table)
	typ := reflect.TypeOf(table)
	for _, m := range []struct {
		name string
		used bool
	}{
		{"LeaseAt", lt.ord != nil},
		{"LeasesInRange", lt.ord != nil},
		{"DeleteExternalRange", lt.ord != nil},
		{"Watch", lt.watch != nil},
	} {
		_, has := typ.MethodByName(m.name)
		switch {
		case has && !m.used:
			t.Errorf("*gateway.Table has %s, but not with the signature upnpsrv expects", m.name)
		case !has:
			t.Logf("*gateway.Table has no %s yet: the server uses its fallback", m.name)
		}
	}
}
