package workload

// ExchangeSkipped says why credential exchange has no numbers. Nothing is
// measured in its place: a made-up number would be worse than none.
const ExchangeSkipped = "not yet implemented: kip does not issue certificates (TokenCredentialRequest) yet"
