// Package cliflags parses command lines the way people type them.
package cliflags

import "flag"

// ParseInterleaved parses the flags of fs that may stand before, between
// or after the positional arguments ("map tcp 8080 --lifetime 60", "show
// tcp 40000 --json") and returns the positional ones in order. "--" ends
// the flags.
func ParseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
