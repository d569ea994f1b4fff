package config

import "testing"

// TestLogLevelValidated: an unknown --log-level is an error, not info.
func TestLogLevelValidated(t *testing.T) {
	for level, ok := range map[string]bool{"debug": true, "WARN": true, "error": true, "disabled": true, "loud": false, "warning": false} {
		c := Defaults()
		c.LogLevel = level
		if err := c.Validate(); (err == nil) != ok {
			t.Errorf("log level %q: err %v", level, err)
		}
	}
}
