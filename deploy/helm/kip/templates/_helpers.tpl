{{/* The chart's name, for the app.kubernetes.io/name label. */}}
{{- define "kip.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object's name. A release named "kip" gives plain "kip",
the names deploy/rbac.yaml uses.
*/}}
{{- define "kip.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "kip.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kip.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kip.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "kip.selectorLabels" . }}
app.kubernetes.io/version: {{ include "kip.tag" . | quote }}
app.kubernetes.io/component: proxy
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "kip.serviceAccountName" -}}
{{- default (include "kip.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{- define "kip.tag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/* The image, repository:tag, or repository@digest when a digest is given. */}}
{{- define "kip.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "kip.tag" .) }}
{{- end }}
{{- end }}

{{/* The Secret holding kip's serving certificate (tls.crt, tls.key). */}}
{{- define "kip.servingSecretName" -}}
{{- default (printf "%s-serving" (include "kip.fullname" .)) .Values.servingCert.existingSecret }}
{{- end }}

{{/* The Secret holding the token webhook's kubeconfig. */}}
{{- define "kip.webhookSecretName" -}}
{{- default (printf "%s-token-webhook" (include "kip.fullname" .)) .Values.tokenWebhook.existingSecret }}
{{- end }}

{{- define "kip.webhookEnabled" -}}
{{- if or .Values.tokenWebhook.kubeconfig .Values.tokenWebhook.existingSecret }}true{{ end }}
{{- end }}

{{/*
The termination grace period: kip keeps serving for --shutdown-delay-duration
after SIGTERM while /readyz fails, then waits up to --request-timeout for
short requests in flight; ten seconds more for the process to exit.
*/}}
{{- define "kip.terminationGracePeriodSeconds" -}}
{{- if .Values.terminationGracePeriodSeconds }}
{{- .Values.terminationGracePeriodSeconds }}
{{- else }}
{{- add .Values.shutdownDelaySeconds .Values.requestTimeoutSeconds 10 }}
{{- end }}
{{- end }}

{{/*
The claim that holds the recordings: the operator's, or the chart's.
*/}}
{{- define "kip.recordingClaim" -}}
{{- default (printf "%s-recordings" (include "kip.fullname" .)) .Values.recording.persistence.existingClaim }}
{{- end }}

{{/*
Recording settings that cannot work together are refused at install, not
found out when the first recording is lost.
*/}}
{{- define "kip.recordingChecks" -}}
{{- $r := .Values.recording }}
{{- if and $r.required (not $r.enabled) }}
{{- fail "recording.required refuses sessions that cannot be recorded, and recording.enabled is false: turn recording on too" }}
{{- end }}
{{- if $r.enabled }}
{{- if and (not $r.persistence.enabled) (not $r.bucket.url) }}
{{- fail "recording.persistence.enabled=false keeps recordings in an emptyDir that is deleted with the pod: set recording.bucket.url so they are uploaded, or turn persistence on" }}
{{- end }}
{{- if and $r.persistence.enabled (not $r.persistence.existingClaim) (gt (int .Values.replicas) 1) (not (has "ReadWriteMany" $r.persistence.accessModes)) }}
{{- fail (printf "recording.persistence: %d replicas cannot share one %s volume; set recording.persistence.accessModes to [ReadWriteMany], give an existingClaim every replica can mount, set replicas: 1, or turn persistence off and set recording.bucket.url" (int .Values.replicas) (join "," $r.persistence.accessModes)) }}
{{- end }}
{{- if and $r.bucket.url $r.persistence.enabled (gt (int .Values.replicas) 1) }}
{{- fail (printf "recording.bucket.url with %d replicas on one recording volume: each kip uploads, then deletes, the recordings it finds in its directory at start, another replica's running ones too; set recording.persistence.enabled=false so each replica spools on a disk of its own, or replicas: 1" (int .Values.replicas)) }}
{{- end }}
{{- if and (or $r.bucket.endpoint $r.bucket.region $r.bucket.credentialsSecret) (not $r.bucket.url) }}
{{- fail "recording.bucket.endpoint, region and credentialsSecret describe a bucket, and recording.bucket.url names none: set recording.bucket.url (s3://BUCKET[/PREFIX])" }}
{{- end }}
{{- end }}
{{- end }}
