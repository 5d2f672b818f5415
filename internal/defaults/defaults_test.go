package defaults

import (
	"testing"
	"time"
)

func TestPositive(t *testing.T) {
	zero, neg, set := time.Duration(0), -1, int64(7)
	Positive(&zero, time.Second)
	Positive(&neg, 3)
	Positive(&set, 9)
	if zero != time.Second || neg != 3 || set != 7 {
		t.Errorf("got %v, %d, %d; want 1s, 3, 7", zero, neg, set)
	}
}
