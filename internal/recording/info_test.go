package recording

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestReadInfo(t *testing.T) {
	sealed := record(t, testHeader(true), sessionEvents()...)
	keyID, _ := keyID(testKey(t).Public())
	// A long session: the seal is far from the header.
	var long []Event
	for i := range 200 {
		long = append(long, at(i, StreamStdout, strings.Repeat("x", 500)))
	}
	longRec := record(t, testHeader(false), long...)
	unsealed := sealed[:bytes.LastIndexByte(sealed[:len(sealed)-1], '\n')+1]
	// A port-forward session: a kip-portforward line before the seal.
	pf := []byte(strings.Replace(string(sealed), `, "kip-seal"`, `, "kip-portforward", "{\"ports\":[8080]}"]`+"\n[10, \"kip-seal\"", 1))
	cut := unsealed[:len(unsealed)-3]
	hugeHeader := append(bytes.Repeat([]byte("{"), MaxHeaderLine+10), '\n')
	endAt := start.Add(10 * time.Second)

	tests := []struct {
		name    string
		data    []byte
		want    Info // Header is checked apart
		wantErr error
	}{
		{name: "sealed", data: sealed, want: Info{Sealed: true, SealKey: keyID, End: endAt}},
		{name: "sealed, long", data: longRec, want: Info{Sealed: true, SealKey: keyID, End: endAt}},
		{name: "unsealed: kip stopped", data: unsealed},
		{name: "cut mid-line", data: cut},
		{name: "a port-forward", data: pf, want: Info{Sealed: true, SealKey: keyID, End: endAt, PortForward: []byte(`{"ports":[8080]}`)}},
		{name: "a seal that is not last does not count", data: append(bytes.Clone(sealed), []byte("[11, \"o\", \"more\"]\n")...)},
		{name: "only a header", data: sealed[:bytes.IndexByte(sealed, '\n')+1]},
		{name: "empty", data: nil, wantErr: ErrNotRecording},
		{name: "garbage", data: []byte("\x00\x01garbage\n[1, \"o\", \"x\"]\n"), wantErr: ErrNotRecording},
		{name: "a header without kip", data: []byte(`{"version":2,"width":80,"height":24}` + "\n"), wantErr: ErrNotRecording},
		{name: "asciicast v1", data: []byte(`{"version":1,"kip":{"start":"2026-03-01T14:02:00Z"}}` + "\n"), wantErr: ErrNotRecording},
		{name: "a header without its newline", data: sealed[:40], wantErr: ErrNotRecording},
		{name: "a huge header line", data: hugeHeader, wantErr: ErrNotRecording},
		{name: "a bad start time", data: []byte(`{"version":2,"kip":{"start":"yesterday"}}` + "\n"), wantErr: ErrNotRecording},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := ReadInfo(bytes.NewReader(tt.data), int64(len(tt.data)))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ReadInfo = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			wantHeader := testHeader(true)
			if tt.name == "sealed, long" {
				wantHeader = testHeader(false)
			}
			wantHeader.Width, wantHeader.Height = 80, 24
			if !reflect.DeepEqual(info.Header, wantHeader) {
				t.Errorf("header %+v, want %+v", info.Header, wantHeader)
			}
			info.Header = Header{}
			if !reflect.DeepEqual(info, tt.want) {
				t.Errorf("info %+v, want %+v", info, tt.want)
			}
		})
	}
}
