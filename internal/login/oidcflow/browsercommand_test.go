package oidcflow

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// signInURL has what a shell or cmd.exe would split or expand.
const signInURL = "https://idp.example.com/authorize?client_id=kip&state=a b&scope=openid%20email&x=$HOME;'"

// TestBrowserCommand: the system's own URL handler on each system, unless
// the user chose a program; the URL is always one argument, untouched.
// Each command runs a stand-in of that name, which records what it got.
func TestBrowserCommand(t *testing.T) {
	tests := []struct {
		name, goos, configured, browserEnv string
		wantProgram                        string
		wantArgs                           []string
	}{
		{name: "macOS opens with open", goos: "darwin", wantProgram: "open", wantArgs: []string{signInURL}},
		{name: "Windows uses the URL protocol handler", goos: "windows", wantProgram: "rundll32",
			wantArgs: []string{"url.dll,FileProtocolHandler", signInURL}},
		{name: "Linux uses xdg-open", goos: "linux", wantProgram: "xdg-open", wantArgs: []string{signInURL}},
		{name: "$BROWSER wins on macOS", goos: "darwin", browserEnv: "firefox", wantProgram: "firefox", wantArgs: []string{signInURL}},
		{name: "--browser-command wins over $BROWSER", goos: "windows", configured: "my-browser", browserEnv: "firefox",
			wantProgram: "my-browser", wantArgs: []string{signInURL}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			record := filepath.Join(dir, "args")
			script := "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > \"${0%/*}/args\"\n"
			if err := os.WriteFile(filepath.Join(dir, tc.wantProgram), []byte(script), 0o700); err != nil {
				t.Fatal(err)
			}
			t.Setenv("PATH", dir)
			cmd := browserCommand(tc.goos, tc.configured, tc.browserEnv, signInURL)
			if err := cmd.Run(); err != nil {
				t.Fatalf("%s: %v", cmd, err)
			}
			b, err := os.ReadFile(record)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
			if !slices.Equal(got, tc.wantArgs) {
				t.Errorf("%s got %q, want %q", tc.wantProgram, got, tc.wantArgs)
			}
		})
	}
}

// TestOnlyWebURLsAreOpened: a provider whose discovery document names a
// file: or other URL as its authorization endpoint does not get it opened
// by the system's URL handler, which would run a program.
func TestOnlyWebURLsAreOpened(t *testing.T) {
	for _, u := range []string{"https://idp.example.com/authorize?x=1", "http://127.0.0.1:5556/auth"} {
		if err := checkWebURL(u); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
	for _, u := range []string{"file:///C:/Windows/System32/calc.exe", "file:///Applications/Calculator.app",
		"javascript:alert(1)", "smb://evil/share", "https:///no-host", "\\\\evil\\share\\x.exe", "HTTPS://"} {
		if err := checkWebURL(u); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
}
