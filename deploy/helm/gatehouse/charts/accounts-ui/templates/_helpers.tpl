{{/* The accounts-ui chart's names and labels, from the shared library chart (charts/common). */}}
{{- define "accounts-ui.name" -}}{{ include "common.name" . }}{{- end -}}
{{- define "accounts-ui.fullname" -}}{{ include "common.fullname" . }}{{- end -}}
{{- define "accounts-ui.chart" -}}{{ include "common.chart" . }}{{- end -}}
{{- define "accounts-ui.labels" -}}{{ include "common.labels" . }}{{- end -}}
{{- define "accounts-ui.selectorLabels" -}}{{ include "common.selectorLabels" . }}{{- end -}}
