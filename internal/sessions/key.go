package sessions

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// LoadKey reads the PEM private key that seals recordings: Ed25519 or
// ECDSA, in PKCS #8 or (ECDSA) SEC 1 form.
func LoadKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the recording key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("the recording key %s holds no PEM block", path)
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("the recording key %s is a %q PEM block; give a PRIVATE KEY (Ed25519 or ECDSA) or an EC PRIVATE KEY", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing the recording key %s: %w", path, err)
	}
	switch k := key.(type) {
	case ed25519.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("the recording key %s is a %T; recordings are sealed with Ed25519 or ECDSA keys", path, key)
}

// GenerateKey makes an Ed25519 key for a kip started without one; its
// public half is written beside the recordings by NewDir.
func GenerateKey() (crypto.Signer, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating a recording key: %w", err)
	}
	return key, nil
}

// Fingerprint names a public key: the hex SHA-256 of its PKIX encoding,
// as the "key" of a recording's seal gives it after "sha256:".
func Fingerprint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encoding the recording key: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// writePublicKey writes pub as PEM to dir/keys/<fingerprint>.pub, so a
// recording's seal names the file that verifies it.
func writePublicKey(dir string, pub crypto.PublicKey) (string, error) {
	fp, err := Fingerprint(pub)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	keys := filepath.Join(dir, "keys")
	if err := os.MkdirAll(keys, 0o700); err != nil {
		return "", fmt.Errorf("creating the recordings' key directory: %w", err)
	}
	path := filepath.Join(keys, fp+".pub")
	data := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	if old, err := os.ReadFile(path); err == nil && string(old) == string(data) {
		return path, nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return "", fmt.Errorf("writing the recordings' public key: %w", err)
	}
	return path, nil
}

// ReadPublicKey reads a public key that writePublicKey wrote.
func ReadPublicKey(path string) (crypto.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("%s holds no PUBLIC KEY PEM block", path)
	}
	return x509.ParsePKIXPublicKey(block.Bytes)
}

// sealKeyHex is a seal's key ID as Fingerprint writes it, after "sha256:".
var sealKeyHex = regexp.MustCompile(`^sha256:([0-9a-f]{64})$`)

// KeyFileFor is the public key file in the recording directory root that
// a seal naming sealKey ("sha256:<hex>") was made with. The key ID comes
// from the recording, so it must be a digest before it names a file.
func KeyFileFor(root, sealKey string) (string, error) {
	m := sealKeyHex.FindStringSubmatch(sealKey)
	if m == nil {
		return "", fmt.Errorf("the recording's seal names the key %q, which is not a sha256 key ID", sealKey)
	}
	return filepath.Join(root, "keys", m[1]+".pub"), nil
}
