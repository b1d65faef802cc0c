{{/* The gateway's names and labels, from the shared library chart (charts/common). */}}
{{- define "gateway.name" -}}{{ include "common.name" . }}{{- end -}}
{{- define "gateway.fullname" -}}{{ include "common.fullname" . }}{{- end -}}
{{- define "gateway.chart" -}}{{ include "common.chart" . }}{{- end -}}
{{- define "gateway.labels" -}}{{ include "common.labels" . }}{{- end -}}
{{- define "gateway.selectorLabels" -}}{{ include "common.selectorLabels" . }}{{- end -}}

{{/* The admin listener's Service: <fullname>-admin. */}}
{{- define "gateway.adminServiceName" -}}
{{- printf "%s-admin" (include "gateway.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* True while an HPA (ours or KEDA's) sets the replica count. */}}
{{- define "gateway.autoscaled" -}}
{{- if or .Values.keda.enabled .Values.autoscaling.enabled -}}true{{- end -}}
{{- end -}}

{{/* Every values mistake at once, then fail. */}}
{{- define "gateway.validateValues" -}}
{{- $errors := list -}}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) -}}
{{- $errors = append $errors "gateway.autoscaling.minReplicas must not exceed maxReplicas" -}}
{{- end -}}
{{- if and .Values.keda.enabled (gt (int .Values.keda.minReplicas) (int .Values.keda.maxReplicas)) -}}
{{- $errors = append $errors "gateway.keda.minReplicas must not exceed maxReplicas" -}}
{{- end -}}
{{- if and .Values.tls.enabled (not .Values.tls.secretName) -}}
{{- $errors = append $errors "gateway.tls.secretName must name a kubernetes.io/tls Secret when gateway.tls.enabled" -}}
{{- end -}}
{{- if not .Values.config.routes -}}
{{- $errors = append $errors "gateway.config.routes must list at least one route" -}}
{{- end -}}
{{- if $errors -}}
{{- fail (printf "\n%s" (join "\n" $errors)) -}}
{{- end -}}
{{- end -}}
