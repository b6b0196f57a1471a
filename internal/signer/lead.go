package signer

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
)

// campaign competes for the Lease until ctx is done and, while this
// replica holds it, rotates the CA when due or asked. Only one replica
// rotates at a time, so replicas do not race to generate keys they would
// throw away; correctness never rests on the Lease alone, since every
// write to the Secret is guarded by its resourceVersion.
func (s *secretSource) campaign(ctx context.Context) {
	le := s.ca.opts.LeaderElection
	// Run returns once the Lease is lost; stand again until ctx ends.
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: &resourcelock.LeaseLock{
				LeaseMeta:  metav1.ObjectMeta{Namespace: s.namespace, Name: le.LeaseName},
				Client:     s.client.CoordinationV1(),
				LockConfig: resourcelock.ResourceLockConfig{Identity: le.Identity},
			},
			LeaseDuration: le.LeaseDuration,
			RenewDeadline: le.RenewDeadline,
			RetryPeriod:   le.RetryPeriod,
			// A replica shutting down hands over at once rather than
			// leaving the others to wait out LeaseDuration.
			ReleaseOnCancel: true,
			Name:            le.LeaseName,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: s.lead,
				OnStoppedLeading: func() {},
				OnNewLeader: func(identity string) {
					klog.InfoS("Signer CA rotation is led by", "lease", s.namespace+"/"+le.LeaseName, "holder", identity, "self", identity == le.Identity)
				},
			},
		})
		if err != nil {
			// Options.complete has checked the same rules.
			klog.ErrorS(err, "Cannot take part in the election of the replica that rotates the signer CA")
			return
		}
		elector.Run(ctx)
	}, le.RetryPeriod)
}

// lead is the leader's loop: it checks whether the CA is due on every
// change of the Secret (an operator's request arrives that way) and every
// CheckInterval, until ctx ends with the Lease.
func (s *secretSource) lead(ctx context.Context) {
	klog.InfoS("This replica now rotates kip's signer CA", "secret", s.String(), "identity", s.ca.opts.LeaderElection.Identity)
	defer klog.InfoS("This replica no longer rotates kip's signer CA", "secret", s.String(), "identity", s.ca.opts.LeaderElection.Identity)
	s.leading.Store(true)
	defer s.leading.Store(false)
	for {
		if err := s.rotate(ctx, true); err != nil && ctx.Err() == nil {
			klog.ErrorS(err, "Rotation of kip's signer CA failed; will retry", "secret", s.String())
		}
		timer := s.ca.opts.Clock.NewTimer(s.ca.opts.CheckInterval)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-s.changed:
			timer.Stop()
		case <-timer.C():
		}
	}
}
