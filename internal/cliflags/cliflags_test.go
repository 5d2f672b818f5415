package cliflags

import (
	"flag"
	"io"
	"slices"
	"testing"
)

func TestParseInterleaved(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	json := fs.Bool("json", false, "")
	life := fs.Int("lifetime", 0, "")
	pos, err := ParseInterleaved(fs, []string{"tcp", "--lifetime", "60", "8080", "--json", "--", "--not-a-flag"})
	if err != nil || !slices.Equal(pos, []string{"tcp", "8080", "--not-a-flag"}) || !*json || *life != 60 {
		t.Errorf("got %q, %v, json %v, lifetime %d", pos, err, *json, *life)
	}
	if _, err := ParseInterleaved(fs, []string{"tcp", "--bogus"}); err == nil {
		t.Error("an unknown flag was accepted")
	}
}
