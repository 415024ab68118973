package commands

import "fmt"

// Count is n followed by the noun's singular (one) or plural (many) form:
// Count(1, "builder", "builders") is "1 builder".
func Count(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
