{{/* Names, labels, the image reference and the security contexts every pod shares. */}}

{{- define "smart.fullname" -}}
{{- if contains "smart" .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-smart" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "smart.labels" -}}
app.kubernetes.io/part-of: smart
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "hub") */}}
{{- define "smart.selector" -}}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The one image: repository@digest when a digest is given, else repository:tag (appVersion). */}}
{{- define "smart.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* Pod Security "restricted": non-root, RuntimeDefault seccomp. */}}
{{- define "smart.podSecurity" -}}
runAsNonRoot: true
runAsUser: {{ .uid | default 10001 }}
runAsGroup: {{ .uid | default 10001 }}
fsGroup: {{ .uid | default 10001 }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Pod Security "restricted" for a container: no escalation, no capabilities, read-only root. */}}
{{- define "smart.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
{{- end -}}

{{- define "smart.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The bundled NATS: its Service names and the users' Secret. */}}
{{- define "smart.nats.bundled" -}}{{ if not .Values.nats.external.url }}true{{ end }}{{- end -}}
{{- define "smart.nats.host" -}}{{ include "smart.fullname" . }}-nats{{- end -}}
{{- define "smart.nats.usersSecret" -}}{{ include "smart.fullname" . }}-nats-users{{- end -}}

{{/*
  SMART_NATS_URL of a hub service (dict "root" $ "user" "operator"): the bundled server with the
  service's own user and password, or the external Secret's URL.
*/}}
{{- define "smart.nats.env" -}}
{{- $root := .root -}}
{{- if include "smart.nats.bundled" $root }}
- name: SMART_NATS_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ include "smart.nats.usersSecret" $root }}, key: {{ .user }}-password}
- name: SMART_NATS_URL
  value: "nats://{{ .user }}:$(SMART_NATS_PASSWORD)@{{ include "smart.nats.host" $root }}.{{ $root.Release.Namespace }}.svc:{{ $root.Values.nats.clientPort }}"
{{- else }}
- name: SMART_NATS_URL
  valueFrom:
    secretKeyRef: {name: {{ $root.Values.nats.external.existingSecret }}, key: {{ .user }}-url}
{{- end }}
{{- end -}}

{{- define "smart.postgresql.bundled" -}}{{ if not .Values.postgresql.external.existingSecret }}true{{ end }}{{- end -}}
{{- define "smart.postgresql.host" -}}{{ include "smart.fullname" . }}-postgresql{{- end -}}
{{- define "smart.postgresql.secret" -}}
{{- if include "smart.postgresql.bundled" . -}}{{ include "smart.fullname" . }}-postgresql{{- else -}}{{ .Values.postgresql.external.existingSecret }}{{- end -}}
{{- end -}}

{{/* A password kept across upgrades: the existing Secret's value, else a new random one. */}}
{{- define "smart.password" -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace .secret -}}
{{- if and $existing (hasKey $existing.data .key) -}}
{{- index $existing.data .key | b64dec -}}
{{- else -}}
{{- randAlphaNum 32 -}}
{{- end -}}
{{- end -}}

{{/* The settings every SMART process of the release gets. */}}
{{- define "smart.settingsEnv" -}}
- {name: SMART_LOG_LEVEL, value: {{ .Values.settings.logLevel | quote }}}
- {name: SMART_SHOP_TIMEZONE, value: {{ .Values.settings.shopTimezone | quote }}}
{{- end -}}

{{- define "smart.stationSecret" -}}
{{- .station.secretName | default (printf "smart-station-%s" .station.id) -}}
{{- end -}}
