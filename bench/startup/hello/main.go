// Command hello prints a line: the bench's start-up floor for any Go program.
package main

import "fmt"

func main() { fmt.Println("hello") }
