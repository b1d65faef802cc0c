{{/* The auth chart's names and labels, from the shared library chart (charts/common). */}}
{{- define "auth.name" -}}{{ include "common.name" . }}{{- end -}}
{{- define "auth.fullname" -}}{{ include "common.fullname" . }}{{- end -}}
{{- define "auth.chart" -}}{{ include "common.chart" . }}{{- end -}}
{{- define "auth.labels" -}}{{ include "common.labels" . }}{{- end -}}
{{- define "auth.selectorLabels" -}}{{ include "common.selectorLabels" . }}{{- end -}}
