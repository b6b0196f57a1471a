// Package objectstore runs versitygw, an S3-compatible server serving a
// temporary directory, on a loopback port, for the tests of recording
// uploads. It can be stopped and started again on the same port with the
// same objects, so a test can take the bucket away and bring it back.
package objectstore
