package dist

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/portlease/portlease/gateway/config"
)

// commentedDirective matches a directive the example leaves commented out:
// '#' and a lower-case word at the start of the line.
var commentedDirective = regexp.MustCompile(`(?m)^#([a-z])`)

// TestExampleConfiguration: the example configuration parses as it is,
// and with every directive it shows commented out put in force.
func TestExampleConfiguration(t *testing.T) {
	b, err := os.ReadFile("portleased.conf.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := config.Parse("portleased.conf.example", strings.NewReader(string(b))); err != nil {
		t.Errorf("the example configuration: %v", err)
	}
	all := commentedDirective.ReplaceAllString(string(b), "$1")
	if all == string(b) {
		t.Fatal("the example shows no commented-out directive; the test reads nothing")
	}
	if _, err := config.Parse("portleased.conf.example (all in force)", strings.NewReader(all)); err != nil {
		t.Errorf("the example configuration with its commented directives in force: %v", err)
	}
}
