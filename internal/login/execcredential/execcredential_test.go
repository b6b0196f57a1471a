package execcredential

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientauthv1 "k8s.io/client-go/pkg/apis/clientauthentication/v1"
)

func TestParseRequest(t *testing.T) {
	ca := base64.StdEncoding.EncodeToString([]byte("PEM"))
	tests := []struct {
		name, env, wantErr, wantVersion, wantServer string
	}{
		{name: "unset", env: "", wantVersion: v1},
		{name: "v1 without cluster", env: `{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":true}}`, wantVersion: v1},
		{name: "v1 with cluster", env: `{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"cluster":{"server":"https://kip:8443","certificate-authority-data":"` + ca + `"}}}`, wantVersion: v1, wantServer: "https://kip:8443"},
		{name: "v1beta1", env: `{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","spec":{}}`, wantVersion: v1beta1},
		{name: "other kind", env: `{"apiVersion":"v1","kind":"Pod"}`, wantErr: "kip speaks"},
		{name: "garbage", env: `{`, wantErr: "reading KUBERNETES_EXEC_INFO"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := ParseRequest(tc.env)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if req.APIVersion != tc.wantVersion {
				t.Errorf("version %q, want %q", req.APIVersion, tc.wantVersion)
			}
			switch {
			case tc.wantServer == "" && req.Cluster != nil:
				t.Errorf("unexpected cluster %+v", req.Cluster)
			case tc.wantServer != "" && (req.Cluster == nil || req.Cluster.Host != tc.wantServer || string(req.Cluster.CAData) != "PEM"):
				t.Errorf("cluster %+v", req.Cluster)
			}
		})
	}
}

func TestWrite(t *testing.T) {
	exp := metav1.NewTime(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	var out bytes.Buffer
	if err := Write(&out, v1beta1, &clientauthv1.ExecCredentialStatus{Token: "t", ExpirationTimestamp: &exp}); err != nil {
		t.Fatal(err)
	}
	want := `{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{"interactive":false},"status":{"expirationTimestamp":"2030-01-01T00:00:00Z","token":"t"}}` + "\n"
	if out.String() != want {
		t.Errorf("got  %s\nwant %s", out.String(), want)
	}
}
