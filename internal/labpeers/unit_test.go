package labpeers

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestReadServiceCredentials(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portleased.service")
	unit := "[Unit]\nUser=wrong\n[Service]\nType=notify\n# User=commented\nUser=portleased\n" +
		"AmbientCapabilities=CAP_NET_ADMIN\nCapabilityBoundingSet=CAP_NET_ADMIN\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\n" +
		"NoNewPrivileges=yes\n[Install]\nWantedBy=multi-user.target\n"
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadServiceCredentials(path)
	if err != nil {
		t.Fatal(err)
	}
	want := ServiceCredentials{User: "portleased", Ambient: []string{"CAP_NET_ADMIN"},
		Bounding: []string{"CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE"}, NoNewPrivileges: true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ReadServiceCredentials = %+v; want %+v", got, want)
	}
	args, err := got.setprivArgs()
	if err != nil {
		t.Fatal(err)
	}
	wantArgs := []string{"--reuid=portleased", "--regid=portleased", "--init-groups", "--inh-caps=-all,+net_admin",
		"--ambient-caps=-all,+net_admin", "--bounding-set=-all,+net_admin,+net_bind_service", "--no-new-privs", "--"}
	if !reflect.DeepEqual(args, wantArgs) {
		t.Errorf("setpriv arguments %q; want %q", args, wantArgs)
	}
	if m := got.boundingMask(); m != 0x1400 {
		t.Errorf("bounding set %#x; want 0x1400", m)
	}
}
