// Package clusters is the registry of the upstream clusters kip fronts as a
// gateway, and the rule that routes a request to one of them.
//
// A request reaches cluster <name> at /clusters/<name>/...: Split reads
// the name from the escaped path byte for byte and never cleans it, so no
// dot segment, encoded slash or doubled slash can lead anywhere but the
// cluster that the first segment names. Each cluster is a name and a
// kubeconfig (server, CA, kip's credentials for it). DirWatcher follows a
// directory of them (file name = cluster name), SecretSource the Secrets
// in kip's namespace that carry the label kip.dev/cluster (its value is
// the name). Each hands over a Snapshot whenever something changed, and
// refuses a bad or duplicate entry on its own, with a reason, without
// taking the others down.
package clusters
