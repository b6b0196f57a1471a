package rig

import "testing"

func TestParseTargetSpec(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    TargetSpec
		wantErr bool
	}{
		{in: "peer=https://127.0.0.1:9443,ca=ca.crt,cert=u.crt,key=u.key,pid=42",
			want: TargetSpec{Name: "peer", URL: "https://127.0.0.1:9443", CAFile: "ca.crt", CertFile: "u.crt", KeyFile: "u.key", PID: 42}},
		{in: "peer=https://127.0.0.1:9443,token=t", want: TargetSpec{Name: "peer", URL: "https://127.0.0.1:9443", TokenFile: "t"}},
		{in: "plain=http://127.0.0.1:8001", want: TargetSpec{Name: "plain", URL: "http://127.0.0.1:8001"}},
		{in: "https://127.0.0.1:9443", wantErr: true},
		{in: "=https://127.0.0.1:9443", wantErr: true},
		{in: "kip=https://127.0.0.1:9443", wantErr: true},
		{in: "peer=ftp://127.0.0.1", wantErr: true},
		{in: "peer=https://127.0.0.1:9443,cert=u.crt", wantErr: true},
		{in: "peer=https://127.0.0.1:9443,colour=blue", wantErr: true},
		{in: "peer=https://127.0.0.1:9443,ca=", wantErr: true},
		{in: "peer=https://127.0.0.1:9443,pid=x", wantErr: true},
	} {
		got, err := ParseTargetSpec(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: err = %v, wantErr %v", tc.in, err, tc.wantErr)
			continue
		}
		if got != tc.want {
			t.Errorf("%q: got %+v, want %+v", tc.in, got, tc.want)
		}
	}
}
