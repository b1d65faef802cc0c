{{/* The postgres chart's names and labels, from the shared library chart (charts/common). */}}
{{- define "postgres.name" -}}{{ include "common.name" . }}{{- end -}}
{{- define "postgres.fullname" -}}{{ include "common.fullname" . }}{{- end -}}
{{- define "postgres.chart" -}}{{ include "common.chart" . }}{{- end -}}
{{- define "postgres.labels" -}}{{ include "common.labels" . }}{{- end -}}
{{- define "postgres.selectorLabels" -}}{{ include "common.selectorLabels" . }}{{- end -}}
