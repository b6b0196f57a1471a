// Package whoami asks the API server behind kip who the caller is (a
// SelfSubjectReview) and prints the answer the way `kubectl auth whoami`
// does, so users can check what identity kip forwards for them.
package whoami
