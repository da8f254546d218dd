package cells_test

import (
	"testing"

	"github.com/fsmc/fsmc/internal/cells"
)

func TestWidth(t *testing.T) {
	for s, want := range map[string]int{
		"":               0,
		"order-1":        7,
		"日本":             4,
		"ｆｕｌｌ":           8, // fullwidth Latin
		"e\u0301t\u00e9": 3, // a combining accent takes no column
		"é日a":            4,
	} {
		if got := cells.Width(s); got != want {
			t.Errorf("Width(%q) = %d, want %d", s, got, want)
		}
	}
}
