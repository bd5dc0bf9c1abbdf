{{/* The three hub roles (values `hubs:`): their Secret and one role's image. */}}
{{- define "smart.hubs.secret" -}}{{ include "smart.fullname" . }}-hub-roles{{- end -}}

{{/* A hub role's image (dict "root" $ "image" .Values.hubs.<role>.image): its own, else the chart's. */}}
{{- define "smart.hubs.image" -}}
{{- $image := .image | default dict -}}
{{- if $image.repository -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository ($image.tag | default .root.Chart.AppVersion) -}}
{{- end -}}
{{- else -}}
{{- include "smart.image" .root -}}
{{- end -}}
{{- end -}}

{{/* Whether any hub role runs on its own (then the NATS config lists the role users). */}}
{{- define "smart.hubs.any" -}}
{{- if or .Values.hubs.vault.enabled .Values.hubs.floor.enabled .Values.hubs.business.enabled }}true{{ end -}}
{{- end -}}

{{/*
  The secrets each role's pod holds (smart.bus.hub_roles.password_file,
  smart.hub.database_roles.password_file): the app container its NATS password only (copied to its
  volume); the migrate init container, read only, its PostgreSQL login's password (the Floor's is
  the ledger app role's) and Grafana's read-only login's (GRAFANA_PASSWORD_FILE), which it sets.
*/}}
{{- define "smart.hubs.migrateSecretKeys" -}}
{{- $keys := dict
  "vault" (list "postgres-smart_vault.password")
  "floor" (list "ledger-app.password")
  "business" (list "postgres-smart_business.password") -}}
{{- append (index $keys .role) "postgres-smart_grafana.password" | toJson -}}
{{- end -}}

{{- define "smart.hubs.roleSecretKeys" -}}
{{- prepend (include "smart.hubs.migrateSecretKeys" . | fromJsonArray) (printf "nats-hub-%s.password" .role) | toJson -}}
{{- end -}}

{{- define "smart.hubs.secretKeys" -}}
{{- $all := list -}}
{{- range $role := list "vault" "floor" "business" -}}
{{- $all = concat $all (include "smart.hubs.roleSecretKeys" (dict "role" $role) | fromJsonArray) -}}
{{- end -}}
{{- $all | uniq | toJson -}}
{{- end -}}

{{/* The hub NATS's address without a user (a role signs in with its own password). */}}
{{- define "smart.hubs.natsUrl" -}}
{{- if include "smart.nats.bundled" . -}}
nats://{{ include "smart.nats.host" . }}.{{ .Release.Namespace }}.svc:{{ .Values.nats.clientPort }}
{{- else -}}
{{ .Values.nats.external.url }}
{{- end -}}
{{- end -}}
