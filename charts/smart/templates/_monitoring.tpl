{{- /*
  Prometheus scraping of every SMART pod that serves /metrics. The annotations an annotation-driven
  scrape configuration reads (prometheus.io/scrape|port|path), on each pod template:
  (dict "port" N). The operator puts the same ones on its module pods (smart/operator/workloads.py).
*/ -}}
{{- define "smart.scrapeAnnotations" -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- end -}}

{{- /* The NetworkPolicy peers that may scrape a pod's metrics port (none given: any source). */ -}}
{{- define "smart.scrapeFrom" -}}
{{- with .Values.metrics.scrapeFrom }}
from: {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
