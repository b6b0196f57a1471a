// Package metricstest reads a metrics.Recorder's series the way a scraper
// would, for tests of the packages that count into it.
package metricstest
