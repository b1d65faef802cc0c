{{/* The fake-backend chart's names and labels, from the shared library chart (charts/common). */}}
{{- define "fake-backend.name" -}}{{ include "common.name" . }}{{- end -}}
{{- define "fake-backend.fullname" -}}{{ include "common.fullname" . }}{{- end -}}
{{- define "fake-backend.chart" -}}{{ include "common.chart" . }}{{- end -}}
{{- define "fake-backend.labels" -}}{{ include "common.labels" . }}{{- end -}}
{{- define "fake-backend.selectorLabels" -}}{{ include "common.selectorLabels" . }}{{- end -}}

{{/* One instance's name and selector: (dict "context" . "index" 1). */}}
{{- define "fake-backend.instanceName" -}}
{{- printf "%s-%d" (include "fake-backend.fullname" .context) (int .index) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "fake-backend.instanceSelectorLabels" -}}
{{ include "fake-backend.selectorLabels" .context }}
app.kubernetes.io/component: {{ printf "backend-%d" (int .index) }}
{{- end -}}
