package options

import "strings"

// PluginExecutable is kip's name as a kubectl plugin: `kubectl kip …` runs
// the first kubectl-kip on the PATH, which krew links to the kip binary.
const PluginExecutable = "kubectl-kip"

// InvokedAsPlugin reports whether argv0 is kip's kubectl plugin executable
// (kubectl-kip, or kubectl-kip.exe on Windows).
func InvokedAsPlugin(argv0 string) bool {
	return commandName(argv0) == PluginExecutable
}

// runsThroughKubectl says whether the exec plugin's command is kubectl
// itself, which then needs "kip" as its first argument: the kubeconfig of
// a user who installed kip with krew says `kubectl kip login …`, which
// keeps working across `kubectl krew upgrade`, where an absolute path into
// krew's store would not.
func runsThroughKubectl(command string) bool {
	return commandName(command) == "kubectl"
}

// defaultKipCommand is what `kip kubeconfig` writes when --kip-command is
// not given: kubectl when kip runs as its plugin, else this executable's
// own path.
func defaultKipCommand(argv0, executable string) string {
	if InvokedAsPlugin(argv0) {
		return "kubectl"
	}
	return executable
}

// commandName is a command's file name without the directory or a Windows
// .exe, read the same way on every system, since a kubeconfig written on
// one may name a path of another.
func commandName(command string) string {
	if i := strings.LastIndexAny(command, `/\`); i >= 0 {
		command = command[i+1:]
	}
	if len(command) > 4 && strings.EqualFold(command[len(command)-4:], ".exe") {
		command = command[:len(command)-4]
	}
	return command
}
