//go:build !windows

package config

import (
	"os"
	"path/filepath"
)

// defaultConfigDir is $XDG_CONFIG_HOME, else ~/.config (macOS too, as
// DESIGN.md gives).
func defaultConfigDir() string {
	if dir := os.Getenv("XDG_CONFIG_HOME"); dir != "" {
		return dir
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".config")
}

// defaultStateDir is $XDG_STATE_HOME, else ~/.local/state.
func defaultStateDir() string {
	if dir := os.Getenv("XDG_STATE_HOME"); dir != "" {
		return dir
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "state")
}
