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
  The secrets files each role reads from its secrets directory (smart.bus.hub_roles.password_file,
  smart.hub.database_roles.password_file): its NATS password, its PostgreSQL login's, and for the
  Vault and the Floor the ledger app role's, which both use.
*/}}
{{- define "smart.hubs.roleSecretKeys" -}}
{{- $keys := dict
  "vault" (list "nats-hub-vault.password" "postgres-smart_vault.password" "ledger-app.password")
  "floor" (list "nats-hub-floor.password" "ledger-app.password")
  "business" (list "nats-hub-business.password" "postgres-smart_business.password") -}}
{{- index $keys .role | toJson -}}
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
