// Package docs holds kip's documents for operators and reviewers; its test
// keeps docs/security.md honest about the tests and files it names.
package docs
