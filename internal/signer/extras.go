package signer

import (
	"bytes"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"
)

// extrasOID identifies kip's extension holding a user's extras. It is the
// UUID 592d1209-ce8e-4e19-9e4f-8ad48838cc5f, so it needs no registration.
//
// The ITU-T X.667 form of that UUID, 2.25.118535310843843856596913486293938785375,
// cannot be used: Go's encoding/asn1 and crypto/x509 refuse any OID arc
// wider than 31 bits, so a certificate carrying it fails to parse and the
// TLS handshake itself fails (TestUUIDArcIsUnparseable shows it). The same
// UUID is therefore written under Microsoft's registration-free GUID arc
// 1.2.840.113556.1.8000.2554, which splits it into 16- and 24-bit arcs
// (hex digits 0-4, 4-8, 9-13, 14-18, 19-23, 24-30, 30-36).
var extrasOID = asn1.ObjectIdentifier{1, 2, 840, 113556, 1, 8000, 2554,
	0x592d, 0x1209, 0xce8e, 0x4e19, 0x9e4f, 0x8ad488, 0x38cc5f}

// extraEntry is one extra in kip's extension:
//
//	Extras ::= SEQUENCE OF SEQUENCE {
//	    key    UTF8String,
//	    values SEQUENCE OF UTF8String }
//
// Raw values let kip insist on UTF8String when decoding: encoding/asn1
// would silently accept other string types into a Go string.
type extraEntry struct {
	Key    asn1.RawValue
	Values []asn1.RawValue
}

// encodeExtras returns the DER form of extras with keys sorted, so that one
// identity always has exactly one encoding. Keys without values are left
// out: they mean nothing upstream.
func encodeExtras(extras map[string][]string) ([]byte, error) {
	keys := make([]string, 0, len(extras))
	for k, v := range extras {
		if len(v) > 0 {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	entries := make([]extraEntry, 0, len(keys))
	for _, k := range keys {
		e := extraEntry{Key: utf8Value(k)}
		for _, v := range extras[k] {
			e.Values = append(e.Values, utf8Value(v))
		}
		entries = append(entries, e)
	}
	der, err := asn1.Marshal(entries)
	if err != nil {
		return nil, fmt.Errorf("encoding the extras: %w", err)
	}
	return der, nil
}

func utf8Value(s string) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagUTF8String, Bytes: []byte(s)}
}

// decodeExtras parses kip's extension. It accepts only the canonical
// encoding encodeExtras writes, so there is exactly one way to say a given
// identity and no leniency for a crafted extension to hide in.
func decodeExtras(der []byte) (map[string][]string, error) {
	var entries []extraEntry
	rest, err := asn1.Unmarshal(der, &entries)
	if err != nil {
		return nil, fmt.Errorf("the extras are not valid DER: %w", err)
	}
	if len(rest) > 0 {
		return nil, errors.New("the extras are followed by trailing data")
	}
	extras := make(map[string][]string, len(entries))
	previous := ""
	for i, e := range entries {
		key, err := utf8String(e.Key)
		if err != nil {
			return nil, fmt.Errorf("extra #%d has a bad key: %w", i, err)
		}
		if key == "" {
			return nil, fmt.Errorf("extra #%d has an empty key", i)
		}
		if i > 0 && key <= previous {
			return nil, fmt.Errorf("extra %q is duplicated or out of order", key)
		}
		previous = key
		if len(e.Values) == 0 {
			return nil, fmt.Errorf("extra %q has no values", key)
		}
		values := make([]string, 0, len(e.Values))
		for _, raw := range e.Values {
			v, err := utf8String(raw)
			if err != nil {
				return nil, fmt.Errorf("extra %q has a bad value: %w", key, err)
			}
			values = append(values, v)
		}
		extras[key] = values
	}
	return extras, canonical(der, extras)
}

// canonical refuses any encoding that encodeExtras would not have written,
// such as a SET in place of a SEQUENCE, whatever the reason it parsed.
func canonical(der []byte, extras map[string][]string) error {
	again, err := encodeExtras(extras)
	if err != nil {
		return err
	}
	if !bytes.Equal(again, der) {
		return errors.New("the extras are not in kip's canonical encoding")
	}
	return nil
}

func utf8String(v asn1.RawValue) (string, error) {
	if v.Class != asn1.ClassUniversal || v.Tag != asn1.TagUTF8String || v.IsCompound {
		return "", fmt.Errorf("want a UTF8String, found class %d tag %d", v.Class, v.Tag)
	}
	if !utf8.Valid(v.Bytes) {
		return "", errors.New("the UTF8String is not valid UTF-8")
	}
	return string(v.Bytes), nil
}
