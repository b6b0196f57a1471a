// Command release writes kip's release: for each platform kip ships on
// (linux, darwin and windows on amd64 and arm64), an archive with the kip
// binary, the licence and the README, and an SBOM of that binary; a SHA-256
// checksums file over all of them; and krew's plugin manifest, generated
// from the checksums, with which `kubectl krew install` makes kip
// `kubectl kip`.
//
//	go run ./hack/release --version v1.2.3 --out dist
//	go run ./hack/release --build-only --out .cache/cross
//	go run ./hack/release krew --checksums dist/kip_v1.2.3_checksums.txt --download-url URL
//
// Builds are reproducible: the same version, commit and source date give
// the same bytes. The binaries are built exactly as the Dockerfile builds
// the container image's, and a test keeps the two recipes equal.
package main
