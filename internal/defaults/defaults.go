// Package defaults fills the unset fields of a configuration.
package defaults

import "time"

// Positive sets *v to def when it is zero or negative: a Config field
// whose zero value means "the default".
func Positive[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}
