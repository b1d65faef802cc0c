{{/* The redis chart's names and labels, from the shared library chart (charts/common). */}}
{{- define "redis.name" -}}{{ include "common.name" . }}{{- end -}}
{{- define "redis.fullname" -}}{{ include "common.fullname" . }}{{- end -}}
{{- define "redis.chart" -}}{{ include "common.chart" . }}{{- end -}}
{{- define "redis.labels" -}}{{ include "common.labels" . }}{{- end -}}
{{- define "redis.selectorLabels" -}}{{ include "common.selectorLabels" . }}{{- end -}}
