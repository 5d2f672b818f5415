package dist

import (
	"encoding/xml"
	"os"
	"strings"
	"testing"
)

// plistValue is one value of an XML property list: a string, a boolean,
// an integer, an array or a dictionary (keys and values in turn).
type plistValue struct {
	XMLName xml.Name
	Text    string       `xml:",chardata"`
	Items   []plistValue `xml:",any"`
}

// dict returns the dictionary v as a map of its keys to their values.
func (v plistValue) dict(t *testing.T) map[string]plistValue {
	t.Helper()
	if v.XMLName.Local != "dict" || len(v.Items)%2 != 0 {
		t.Fatalf("want a dict of key and value pairs, got <%s> with %d items", v.XMLName.Local, len(v.Items))
	}
	m := make(map[string]plistValue)
	for i := 0; i < len(v.Items); i += 2 {
		if v.Items[i].XMLName.Local != "key" {
			t.Fatalf("dict item %d is <%s>; want <key>", i, v.Items[i].XMLName.Local)
		}
		m[v.Items[i].Text] = v.Items[i+1]
	}
	return m
}

// TestLaunchAgent: the LaunchAgent is a well-formed property list that
// runs portlease keep in the foreground (launchd supervises; a detaching
// program would look exited to it) on the user's file, at load, and again
// when it fails.
func TestLaunchAgent(t *testing.T) {
	b, err := os.ReadFile("launchd/com.github.portlease.keep.plist")
	if err != nil {
		t.Fatal(err)
	}
	var plist struct {
		Version string       `xml:"version,attr"`
		Dict    []plistValue `xml:",any"`
	}
	if err := xml.Unmarshal(b, &plist); err != nil {
		t.Fatalf("the plist is not well-formed XML: %v", err)
	}
	if plist.Version != "1.0" || len(plist.Dict) != 1 {
		t.Fatalf("want <plist version=\"1.0\"> holding one dict; got version %q, %d values", plist.Version, len(plist.Dict))
	}
	top := plist.Dict[0].dict(t)
	if got := top["Label"].Text; got != "com.github.portlease.keep" {
		t.Errorf("Label = %q; want com.github.portlease.keep (the file's name)", got)
	}
	var args []string
	for _, a := range top["ProgramArguments"].Items {
		args = append(args, a.Text)
	}
	if len(args) != 3 || args[0] != "/bin/sh" || args[1] != "-c" {
		t.Fatalf("ProgramArguments = %q; want /bin/sh -c COMMAND", args)
	}
	for _, want := range []string{"exec portlease keep --foreground", `-f "$HOME/Library/Application Support/portlease/ports.csv"`, `2>>"$HOME/Library/Logs/portlease-keep.log"`} {
		if !strings.Contains(args[2], want) {
			t.Errorf("the command %q lacks %q", args[2], want)
		}
	}
	if top["RunAtLoad"].XMLName.Local != "true" {
		t.Error("RunAtLoad is not true")
	}
	if keepAlive := top["KeepAlive"].dict(t); keepAlive["SuccessfulExit"].XMLName.Local != "false" {
		t.Error("KeepAlive lacks SuccessfulExit false: launchd would not start keep again after a failure")
	}
}
