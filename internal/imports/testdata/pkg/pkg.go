// Package pkg is test input for TestOutside; it is never built.
package pkg

import (
	_ "example.com/other"
	_ "example.com/x/y"
	_ "fmt"
)
