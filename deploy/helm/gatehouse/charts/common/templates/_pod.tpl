{{/*
What every Gatehouse pod shares: the image reference, the restricted security
context (https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted),
Prometheus scrape annotations when no Prometheus Operator is used, and the
scheduling knobs.
*/}}

{{/* repository:tag, the tag defaulting to the chart's appVersion; a global registry is prefixed. */}}
{{- define "common.image" -}}
{{- $registry := "" -}}
{{- if .Values.global -}}{{- $registry = .Values.global.imageRegistry | default "" -}}{{- end -}}
{{- $ref := printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) -}}
{{- if $registry -}}{{- printf "%s/%s" $registry $ref -}}{{- else -}}{{- $ref -}}{{- end -}}
{{- end -}}

{{/* Pod-level security: never root, the runtime's seccomp profile, files group-owned by the pod. */}}
{{- define "common.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.runAsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container-level security: no privilege escalation, no capabilities, read-only root where the service allows. */}}
{{- define "common.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: {{ .Values.securityContext.readOnlyRootFilesystem }}
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/*
The pod template's annotations block, or nothing when there are none:
prometheus.io/* scrape annotations unless a ServiceMonitor scrapes, then
`extra` (the gateway's config checksum), then the chart's podAnnotations.
  include "common.podAnnotations" (dict "context" . "port" 8080 "path" "/metrics" "extra" (dict))
*/}}
{{- define "common.podAnnotations" -}}
{{- $ctx := .context -}}
{{- $annotations := dict -}}
{{- if not (include "common.prometheusOperator" $ctx) -}}
{{- $_ := set $annotations "prometheus.io/scrape" "true" -}}
{{- $_ := set $annotations "prometheus.io/port" (toString .port) -}}
{{- $_ := set $annotations "prometheus.io/path" .path -}}
{{- end -}}
{{- $annotations = merge $annotations (.extra | default dict) ($ctx.Values.podAnnotations | default dict) -}}
{{- with $annotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end -}}
{{- end -}}

{{/* "true" when the Prometheus Operator's CRDs are in use (global.prometheusOperator.enabled), else empty. */}}
{{- define "common.prometheusOperator" -}}
{{- $global := .Values.global | default dict -}}
{{- $operator := $global.prometheusOperator | default dict -}}
{{- if $operator.enabled -}}true{{- end -}}
{{- end -}}

{{/* nodeSelector, tolerations and affinity, when set. */}}
{{- define "common.scheduling" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
