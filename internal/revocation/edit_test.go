package revocation

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/kubernetes/fake"
)

func TestAddWidensAndPrunes(t *testing.T) {
	ctx := context.Background()
	src := Source{Client: fake.NewClientset(), Namespace: "kip", Name: "kip-revocations"}
	// The first write creates the ConfigMap.
	stale := Entry{Kind: KindUser, Value: "carol", Before: t0.Add(-48 * time.Hour), Expires: t0.Add(-24 * time.Hour)}
	if _, err := src.Add(ctx, stale, t0.Add(-25*time.Hour)); err != nil {
		t.Fatal(err)
	}
	lock := Entry{Kind: KindUser, Value: "alice", Before: t0.Add(time.Hour), Expires: t0.Add(25 * time.Hour)}
	if _, err := src.Add(ctx, lock, t0); err != nil {
		t.Fatal(err)
	}
	// Revoking again now must not shorten the lock.
	written, err := src.Add(ctx, revoke(KindUser, "alice"), t0)
	if err != nil {
		t.Fatal(err)
	}
	if !written.Before.Equal(lock.Before) || !written.Expires.Equal(lock.Expires) {
		t.Errorf("wrote %s–%s, want the lock's %s–%s kept", written.Before, written.Expires, lock.Before, lock.Expires)
	}
	entries, problems, err := src.Entries(ctx)
	if err != nil || len(problems) > 0 {
		t.Fatal(err, problems)
	}
	if len(entries) != 1 || entries[0].Value != "alice" {
		t.Errorf("entries %+v, want alice's alone (carol's expired)", entries)
	}
}

func TestAddRefusesInvalidEntries(t *testing.T) {
	src := Source{Client: fake.NewClientset(), Namespace: "kip", Name: "kip-revocations"}
	bad := Entry{Kind: KindUser, Value: "alice", Before: t0, Expires: t0}
	if _, err := src.Add(context.Background(), bad, t0); err == nil {
		t.Error("an entry that expires at its own time was written")
	}
}

func TestRemove(t *testing.T) {
	ctx := context.Background()
	src := Source{Client: fake.NewClientset(), Namespace: "kip", Name: "kip-revocations"}
	if found, err := src.Remove(ctx, KindUser, "alice", t0); found || err != nil {
		t.Fatalf("removing from no list: %v, %v", found, err)
	}
	if _, err := src.Add(ctx, revoke(KindUser, "alice"), t0); err != nil {
		t.Fatal(err)
	}
	if found, err := src.Remove(ctx, KindUser, "alice", t0); !found || err != nil {
		t.Fatalf("removing alice: %v, %v", found, err)
	}
	if entries, _, _ := src.Entries(ctx); len(entries) != 0 {
		t.Errorf("entries left: %+v", entries)
	}
}

func TestFollow(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset()
	src := Source{Client: client, Namespace: "kip", Name: "kip-revocations"}
	list := NewList(nil)
	go src.Follow(ctx, list, nil)
	eventually(t, "an absent ConfigMap reads as an empty list", list.Loaded)
	alice := &user.DefaultInfo{Name: "alice"}
	now := time.Now()
	e := Entry{Kind: KindUser, Value: "alice", Before: now, Expires: now.Add(time.Hour)}
	k, v := entryJSON(t, e)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kip", Name: "kip-revocations"}, Data: map[string]string{k: v}}
	if _, err := client.CoreV1().ConfigMaps("kip").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new entry is enforced", func() bool {
		e, _ := list.Check(alice, Credential{Issued: now.Add(-time.Second)})
		return e != nil
	})
	// Another ConfigMap in the namespace is not the list.
	other := cm.DeepCopy()
	other.Name = "other"
	if _, err := client.CoreV1().ConfigMaps("kip").Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().ConfigMaps("kip").Delete(ctx, "kip-revocations", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a deleted list is empty", func() bool {
		e, err := list.Check(alice, Credential{Issued: now.Add(-time.Second)})
		return e == nil && err == nil
	})
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 5*time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("timed out waiting until %s", what)
	}
}
