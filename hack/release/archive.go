package main

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// member is one file of an archive.
type member struct {
	name string // name inside the archive
	path string // file to copy
	mode int64
}

// archiveName is the release archive for p: a zip on Windows, where
// Explorer opens it, a gzipped tar elsewhere.
func archiveName(version string, p platform) string {
	ext := ".tar.gz"
	if p.OS == "windows" {
		ext = ".zip"
	}
	return fmt.Sprintf("kip_%s_%s_%s%s", version, p.OS, p.Arch, ext)
}

// writeArchive writes members to path. Every entry gets the same time and
// no owner, so that the archive's bytes depend on its contents alone.
func writeArchive(path string, members []member, modTime time.Time) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	if filepath.Ext(path) == ".zip" {
		return writeZip(f, members, modTime)
	}
	return writeTarGz(f, members, modTime)
}

func writeTarGz(w io.Writer, members []member, modTime time.Time) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	for _, m := range members {
		b, err := os.ReadFile(m.path)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: m.name, Mode: m.mode, Size: int64(len(b)), ModTime: modTime, Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func writeZip(w io.Writer, members []member, modTime time.Time) error {
	zw := zip.NewWriter(w)
	for _, m := range members {
		b, err := os.ReadFile(m.path)
		if err != nil {
			return err
		}
		hdr := &zip.FileHeader{Name: m.name, Method: zip.Deflate, Modified: modTime.UTC()}
		hdr.SetMode(os.FileMode(m.mode))
		fw, err := zw.CreateHeader(hdr)
		if err != nil {
			return err
		}
		if _, err := fw.Write(b); err != nil {
			return err
		}
	}
	return zw.Close()
}
