package clusters

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const ns = "kip-system"

func clusterSecret(t *testing.T, name, cluster string, kc *clientcmdapi.Config) *corev1.Secret {
	t.Helper()
	data, err := clientcmd.Write(*kc)
	if err != nil {
		t.Fatal(err)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{DefaultSecretLabel: cluster}},
		Data:       map[string][]byte{SecretKey: data},
	}
}

func TestSecretSource(t *testing.T) {
	client := fake.NewClientset(
		clusterSecret(t, "kip-cluster-prod", "prod", withToken("p1")),
		// Not a cluster Secret: no label, so not even listed.
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "unrelated", Namespace: ns}, Data: map[string][]byte{SecretKey: []byte("x")}},
	)
	snapshots := make(chan Snapshot, 16)
	src := &SecretSource{Client: client, Namespace: ns, OnChange: func(s Snapshot) { snapshots <- s }}
	runInBackground(t, src.Run)
	secrets := client.CoreV1().Secrets(ns)
	// expect waits for the snapshot want; the informer may hand over
	// intermediate ones on the way.
	expect := func(step, want string) Snapshot {
		t.Helper()
		deadline := time.After(10 * time.Second)
		var got string
		for {
			select {
			case s := <-snapshots:
				if got = describe(s); got == want {
					return s
				}
			case <-deadline:
				t.Fatalf("%s: last snapshot %q, want %q", step, got, want)
			}
		}
	}
	ctxT := context.Background()

	expect("start", "prod=p1")
	if _, err := secrets.Create(ctxT, clusterSecret(t, "kip-cluster-dev", "dev", withToken("d1")), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("add dev", "dev=d1,prod=p1")
	if _, err := secrets.Update(ctxT, clusterSecret(t, "kip-cluster-prod", "prod", withToken("p2")), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("rotate prod", "dev=d1,prod=p2")

	hostile := []*corev1.Secret{
		// tokenFile would read kip's own ServiceAccount token.
		clusterSecret(t, "tokenfile", "stolen", kubeconfig(func(kc *clientcmdapi.Config) {
			kc.AuthInfos["kip"] = &clientcmdapi.AuthInfo{TokenFile: "/var/run/secrets/kubernetes.io/serviceaccount/token"}
		})),
		clusterSecret(t, "cafile", "cafile", kubeconfig(func(kc *clientcmdapi.Config) {
			kc.Clusters["c"].CertificateAuthorityData, kc.Clusters["c"].CertificateAuthority = nil, "/etc/ssl/ca.pem"
		})),
		clusterSecret(t, "exec", "exec", kubeconfig(func(kc *clientcmdapi.Config) {
			kc.AuthInfos["kip"] = &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{Command: "/bin/true"}}
		})),
		clusterSecret(t, "badname", "Not_A_Label", withToken("x")),
		clusterSecret(t, "emptyname", "", withToken("x")),
		clusterSecret(t, "dup", "dev", withToken("d9")),
		{ObjectMeta: metav1.ObjectMeta{Name: "nokey", Namespace: ns, Labels: map[string]string{DefaultSecretLabel: "nokey"}}, Data: map[string][]byte{"config": []byte("x")}},
	}
	for _, s := range hostile {
		if _, err := secrets.Create(ctxT, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// dev is now named twice, so both Secrets are refused; prod is untouched.
	last := expect("hostile Secrets", "prod=p2,refused:badname,refused:cafile,refused:dup,refused:emptyname,"+
		"refused:exec,refused:kip-cluster-dev,refused:nokey,refused:tokenfile")
	reasons := map[string]string{
		"tokenfile": "names a file", "cafile": "certificate-authority-data", "exec": "exec plugin",
		"badname": "not a cluster name", "emptyname": "not a cluster name", "dup": "named by 2 entries",
		"kip-cluster-dev": "named by 2 entries", "nokey": `no "kubeconfig" key`,
	}
	for _, r := range last.Refused {
		name := strings.TrimPrefix(r.Origin, "secret "+ns+"/")
		if !strings.Contains(r.Reason, reasons[name]) {
			t.Errorf("%s refused with %q, want it to say %q", name, r.Reason, reasons[name])
		}
	}
	for _, name := range []string{"tokenfile", "cafile", "exec", "badname", "emptyname", "dup", "nokey"} {
		if err := secrets.Delete(ctxT, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	expect("hostile Secrets deleted", "dev=d1,prod=p2")
	if err := secrets.Delete(ctxT, "kip-cluster-prod", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("delete prod", "dev=d1")
}
