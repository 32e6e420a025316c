package cli_test

import (
	"fmt"
	"os"
)

// asNobody needs Unix users; scripts using it skip on Windows.
func asNobody() int {
	fmt.Fprintln(os.Stderr, "as-nobody: not on Windows")
	return 2
}
