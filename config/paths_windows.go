//go:build windows

package config

import "os"

// defaultConfigDir is %AppData% (roaming: the config follows the user).
func defaultConfigDir() string {
	if dir := os.Getenv("AppData"); dir != "" {
		return dir
	}
	dir, _ := os.UserConfigDir()
	return dir
}

// defaultStateDir is %LocalAppData% (the state stays on the machine).
func defaultStateDir() string {
	if dir := os.Getenv("LocalAppData"); dir != "" {
		return dir
	}
	dir, _ := os.UserCacheDir()
	return dir
}
