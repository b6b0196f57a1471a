// Package v1alpha1 is the kip.dev/v1alpha1 configuration file of
// `kip serve --config`: a KipConfiguration, with one field for every flag.
// Fields a file leaves out get their flag's default, unknown and
// duplicate fields are refused, and flags given on the command line win
// over the file. An example, with the defaults spelled out where they are
// worth knowing (testdata/kipconfiguration.yaml in internal/options is
// loaded by a test):
//
//	apiVersion: kip.dev/v1alpha1
//	kind: KipConfiguration
//	serving:
//	  port: 8443
//	  tlsCertFile: /etc/kip/serving/tls.crt
//	  tlsPrivateKeyFile: /etc/kip/serving/tls.key
//	  tlsMinVersion: VersionTLS12
//	authentication:
//	  trustClusterClientCA: true
//	  authenticationConfigFile: /etc/kip/authentication.yaml
//	  signerCA:
//	    secret: kip-system/kip-signer-ca
//	  credentialTTL: 5m
//	upstream: {}                 # no kubeconfig: in-cluster
//	audit:
//	  policyFile: /etc/kip/audit-policy.yaml
//	  log:
//	    path: "-"
//	observability:
//	  probePort: 8081
//	limits:
//	  requestTimeout: 1m
//	  shutdownDelayDuration: 10s
//	  streamWriteTimeout: 1m
//	logging:
//	  format: json
//
// +k8s:deepcopy-gen=package
// +k8s:defaulter-gen=TypeMeta
// +groupName=kip.dev
package v1alpha1
