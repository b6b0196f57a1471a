// Package exchange is the client of kip's credential exchange: it posts a
// TokenCredentialRequest (a token and a certificate signing request) and
// returns the short-lived client certificate kip issues.
//
// The private key is generated here and never leaves the machine: kip only
// sees the CSR, whose signature proves that the caller holds the key.
package exchange
