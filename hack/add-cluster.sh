#!/bin/sh
# add-cluster.sh registers a cluster with a kip gateway (README, "Many
# clusters behind one kip"). In the target cluster it creates a
# ServiceAccount for kip with the rights of deploy/rbac.yaml and a
# long-lived token for it; in kip's namespace it writes the Secret kip
# serves the cluster from. Run it again to update the Secret (a new server
# address or access policy); --rotate replaces the token.
#
# Needs kubectl and POSIX tools only. $KUBECTL names another kubectl.

set -eu
set -f # no pathname expansion: names and groups are split on commas only

usage() {
	cat <<'EOF'
Usage: add-cluster.sh --name NAME [options]

Registers the cluster of --kubeconfig/--context (the target) with the kip
whose namespace is --kip-namespace in the cluster of
--kip-kubeconfig/--kip-context. kubectl then reaches the target at
https://<kip>/clusters/NAME.

In the target cluster (server-side apply, field manager kip-add-cluster):
  Namespace NAMESPACE, ServiceAccount NAMESPACE/SA,
  ClusterRole SA and ClusterRoleBinding SA (deploy/rbac.yaml's kip-proxy rules),
  RoleBinding kube-system/SA-client-ca-reader (reads the cluster's client CA),
  Secret NAMESPACE/SA-token of type kubernetes.io/service-account-token.
In kip's cluster:
  Secret KIP_NAMESPACE/kip-cluster-NAME, label LABEL=NAME, key kubeconfig.

Options:
  --name NAME               the cluster's name in kip, a DNS label (required)
  --kubeconfig FILE         the target's kubeconfig (default: kubectl's)
  --context CONTEXT         the target's context (default: the current one)
  --namespace NS            the target namespace of kip's ServiceAccount (kip-system)
  --service-account SA      its name, also that of its roles (kip-gateway)
  --server URL              the address kip reaches the target at
                            (default: the server of the target's context)
  --kip-kubeconfig FILE     the kubeconfig of kip's cluster (default: kubectl's)
  --kip-context CONTEXT     its context (default: the current one)
  --kip-namespace NS        kip's namespace (kip-system)
  --label KEY               the label kip selects cluster Secrets by (kip.dev/cluster)
  --secret-name NAME        the cluster Secret's name (kip-cluster-NAME)
  --groups G1,G2            access policy: only members of these groups may
                            reach the cluster
  --expression CEL          access policy: a CEL expression over user
                            (username, uid, groups, extra); with --groups, a
                            user passing either may reach the cluster
  --no-client-ca-reader     skip the kube-system RoleBinding (only needed with
                            kip serve --trust-cluster-client-ca)
  --rotate                  delete the token Secret first, so a new token is
                            issued; the old one stops working within seconds
  --timeout SECONDS         how long to wait for the token (60)
  -h, --help                this text
EOF
}

die() {
	printf 'add-cluster.sh: %s\n' "$*" >&2
	exit 1
}

KUBECTL=${KUBECTL:-kubectl}
name= kubeconfig= context= namespace=kip-system sa=kip-gateway server=
kip_kubeconfig= kip_context= kip_namespace=kip-system label=kip.dev/cluster
secret_name= groups= expression= client_ca_reader=true rotate=false timeout=60
have_groups=false

while [ $# -gt 0 ]; do
	opt=$1
	shift
	case $opt in
	-h | --help) usage; exit 0 ;;
	--no-client-ca-reader) client_ca_reader=false; continue ;;
	--rotate) rotate=true; continue ;;
	--*=*) val=${opt#*=}; opt=${opt%%=*} ;;
	--*)
		[ $# -gt 0 ] || die "$opt needs a value"
		val=$1
		shift
		;;
	*) die "unexpected argument \"$opt\" (see --help)" ;;
	esac
	case $opt in
	--name) name=$val ;;
	--kubeconfig) kubeconfig=$val ;;
	--context) context=$val ;;
	--namespace) namespace=$val ;;
	--service-account) sa=$val ;;
	--server) server=$val ;;
	--kip-kubeconfig) kip_kubeconfig=$val ;;
	--kip-context) kip_context=$val ;;
	--kip-namespace) kip_namespace=$val ;;
	--label) label=$val ;;
	--secret-name) secret_name=$val ;;
	--groups) groups=$val; have_groups=true ;;
	--expression) expression=$val ;;
	--timeout) timeout=$val ;;
	*) die "unknown option $opt (see --help)" ;;
	esac
done

is_dns_label() {
	printf '%s' "$1" | grep -Eq '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$' &&
		[ "$(printf '%s' "$1" | wc -l)" -eq 0 ]
}

[ -n "$name" ] || die "--name is required (see --help)"
is_dns_label "$name" || die "cluster name \"$name\" is not a DNS label (lower case letters, digits and '-', at most 63)"
for n in "$namespace" "$kip_namespace" "$sa"; do
	is_dns_label "$n" || die "\"$n\" is not a valid namespace or ServiceAccount name"
done
secret_name=${secret_name:-kip-cluster-$name}
printf '%s' "$label" | grep -Eq '^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$' ||
	die "--label \"$label\" is not a label key"
case $timeout in '' | *[!0-9]*) die "--timeout \"$timeout\" is not a number of seconds" ;; esac

# Newlines would break out of the YAML scalars below.
nl=$(printf '\nx')
nl=${nl%x}
case $groups$expression in *"$nl"*) die "--groups and --expression must be one line each" ;; esac

target() {
	"$KUBECTL" ${kubeconfig:+"--kubeconfig=$kubeconfig"} ${context:+"--context=$context"} "$@"
}
kip_cluster() {
	"$KUBECTL" ${kip_kubeconfig:+"--kubeconfig=$kip_kubeconfig"} ${kip_context:+"--context=$kip_context"} "$@"
}

# quote writes $1 as a YAML double-quoted string.
quote() {
	printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"
}

# Everything is checked before anything is written.
group_list=
if [ "$have_groups" = true ]; then
	old_ifs=$IFS
	IFS=,
	for g in $groups; do
		[ -n "$g" ] || die "--groups \"$groups\" has an empty group"
		group_list="$group_list${group_list:+, }$(quote "$g")"
	done
	IFS=$old_ifs
	[ -n "$group_list" ] || die "--groups is empty"
fi
if [ -z "$server" ]; then
	server=$(target config view --minify -o 'jsonpath={.clusters[0].cluster.server}') ||
		die "could not read the target's kubeconfig"
fi
[ -n "$server" ] || die "the target's kubeconfig names no server; pass --server"
case $server in https://*) ;; *) die "server \"$server\" is not https" ;; esac
ca=$(target config view --minify --flatten -o 'jsonpath={.clusters[0].cluster.certificate-authority-data}')

umask 077
tmp=${TMPDIR:-/tmp}/kip-add-cluster.$$
mkdir "$tmp" || die "cannot create $tmp"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

# 1. kip's account in the target cluster.
if [ "$rotate" = true ]; then
	target -n "$namespace" delete secret "$sa-token" --ignore-not-found >/dev/null
fi
{
	cat <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: $namespace
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: $sa
  namespace: $namespace
---
# The rules of deploy/rbac.yaml's ClusterRole kip-proxy (test/deploy checks
# they stay equal): impersonation and the two reviews, nothing else.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: $sa
rules:
- apiGroups: [""]
  resources: ["users", "groups", "serviceaccounts"]
  verbs: ["impersonate"]
- apiGroups: ["authentication.k8s.io"]
  resources: ["*"]
  verbs: ["impersonate"]
- apiGroups: ["authentication.k8s.io"]
  resources: ["tokenreviews"]
  verbs: ["create"]
- apiGroups: ["authorization.k8s.io"]
  resources: ["subjectaccessreviews"]
  verbs: ["create"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: $sa
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: $sa
subjects:
- kind: ServiceAccount
  name: $sa
  namespace: $namespace
---
# A long-lived token, filled in by the cluster's token controller.
apiVersion: v1
kind: Secret
metadata:
  name: $sa-token
  namespace: $namespace
  annotations:
    kubernetes.io/service-account.name: $sa
type: kubernetes.io/service-account-token
EOF
	if [ "$client_ca_reader" = true ]; then
		cat <<EOF
---
# Lets kip read the cluster's client CA (--trust-cluster-client-ca).
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: $sa-client-ca-reader
  namespace: kube-system
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: extension-apiserver-authentication-reader
subjects:
- kind: ServiceAccount
  name: $sa
  namespace: $namespace
EOF
	fi
} >"$tmp/target.yaml"
target apply --server-side --field-manager=kip-add-cluster -f "$tmp/target.yaml" >&2 ||
	die "could not create kip's ServiceAccount and roles in the target cluster"

# 2. Its token, once the token controller has written it.
token=
waited=0
while :; do
	token=$(target -n "$namespace" get secret "$sa-token" \
		-o 'go-template={{ with .data }}{{ with .token }}{{ base64decode . }}{{ end }}{{ end }}') ||
		die "could not read Secret $namespace/$sa-token in the target cluster"
	[ -z "$token" ] || break
	[ "$waited" -lt "$timeout" ] ||
		die "Secret $namespace/$sa-token got no token within ${timeout}s; is the cluster's token controller (kube-controller-manager) running?"
	sleep 1
	waited=$((waited + 1))
done

# 3. The target's CA: from its kubeconfig, else the token Secret's ca.crt
# (the cluster's root CA).
if [ -z "$ca" ]; then
	ca=$(target -n "$namespace" get secret "$sa-token" -o 'jsonpath={.data.ca\.crt}')
fi
[ -n "$ca" ] || die "found no CA for $server in the target's kubeconfig or in Secret $namespace/$sa-token"

# 4. kip's kubeconfig for the target, with the access policy (the
# kip.dev/access extension) when one is given.
{
	cat <<EOF
apiVersion: v1
kind: Config
clusters:
- name: $name
  cluster:
    server: $(quote "$server")
    certificate-authority-data: $ca
EOF
	if [ "$have_groups" = true ] || [ -n "$expression" ]; then
		printf '    extensions:\n    - name: kip.dev/access\n      extension:\n'
		if [ "$have_groups" = true ]; then
			printf '        groups: [%s]\n' "$group_list"
		fi
		if [ -n "$expression" ]; then
			printf '        expression: %s\n' "$(quote "$expression")"
		fi
	fi
	cat <<EOF
users:
- name: kip
  user:
    token: $(quote "$token")
contexts:
- name: $name
  context:
    cluster: $name
    user: kip
current-context: $name
EOF
} >"$tmp/kubeconfig"

# 5. The cluster Secret in kip's namespace. kubectl base64-encodes the
# kubeconfig without contacting any server.
data=$(kip_cluster create secret generic "$secret_name" --from-file=kubeconfig="$tmp/kubeconfig" \
	--dry-run=client -o 'go-template={{ .data.kubeconfig }}')
cat >"$tmp/secret.yaml" <<EOF
apiVersion: v1
kind: Secret
metadata:
  name: $secret_name
  namespace: $kip_namespace
  labels:
    $label: $(quote "$name")
    app.kubernetes.io/managed-by: kip-add-cluster
type: Opaque
data:
  kubeconfig: $data
EOF
kip_cluster apply --server-side --field-manager=kip-add-cluster -f "$tmp/secret.yaml" >&2 ||
	die "could not write Secret $kip_namespace/$secret_name in kip's cluster"

printf 'cluster %s registered: Secret %s/%s; kubectl reaches it at https://<kip>/clusters/%s\n' \
	"$name" "$kip_namespace" "$secret_name" "$name"
