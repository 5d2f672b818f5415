package main

import (
	"flag"
	"io"
	"testing"
)

func TestAllowForeignControlURLFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want bool
	}{
		{nil, false},
		{[]string{"--allow-foreign-control-url"}, true},
	} {
		var f clientFlags
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		f.register(fs, "warn")
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		cfg, err := f.config(nil)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.AllowForeignControlURL != tt.want {
			t.Errorf("%q: AllowForeignControlURL = %v; want %v", tt.args, cfg.AllowForeignControlURL, tt.want)
		}
	}
}
