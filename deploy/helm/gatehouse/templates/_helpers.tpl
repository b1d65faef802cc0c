{{/* The umbrella chart's names and labels, from the shared library chart (charts/common). */}}
{{- define "gatehouse.name" -}}{{ include "common.name" . }}{{- end -}}
{{- define "gatehouse.fullname" -}}{{ include "common.fullname" . }}{{- end -}}
{{- define "gatehouse.chart" -}}{{ include "common.chart" . }}{{- end -}}
{{- define "gatehouse.labels" -}}{{ include "common.labels" . }}{{- end -}}
{{- define "gatehouse.selectorLabels" -}}{{ include "common.selectorLabels" . }}{{- end -}}

{{/* The gateway's Service name and port, for the HTTPRoutes, the Ingress, NOTES and the test pod. */}}
{{- define "gatehouse.gatewayService" -}}
{{- include "common.siblingName" (dict "context" . "component" "gateway") -}}
{{- end -}}

{{/* The matchLabels of one subchart's pods in this release (its chart name): (dict "context" . "name" "auth"). */}}
{{- define "gatehouse.podsOf" -}}
matchLabels:
  app.kubernetes.io/name: {{ .name }}
  app.kubernetes.io/instance: {{ .context.Release.Name }}
{{- end -}}

{{/* <fullname>-<name>, the NetworkPolicy of one component. */}}
{{- define "gatehouse.policyName" -}}
{{- printf "%s-%s" (include "gatehouse.fullname" .context) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The port of global.redis.url (redis://[user:password@]host[:port]/db), 6379 when absent. */}}
{{- define "gatehouse.externalRedisPort" -}}
{{- $host := (urlParse .Values.global.redis.url).host -}}
{{- regexFind "[0-9]+$" (regexFind ":[0-9]+$" $host) | default "6379" -}}
{{- end -}}

{{/* An image of a subchart's values, rendered the way the subchart renders it. */}}
{{- define "gatehouse.image" -}}
{{- include "common.image" (dict "Values" (dict "image" .image "global" .root.Values.global) "Chart" .root.Chart) -}}
{{- end -}}

{{/* Every values mistake at once, then fail (https://helm.sh/docs/howto/charts_tips_and_tricks/). */}}
{{- define "gatehouse.validateValues" -}}
{{- $errors := list -}}
{{- $db := .Values.global.database -}}
{{- if and (not .Values.postgres.enabled) (not $db.host) -}}
{{- $errors = append $errors "postgres.enabled=false needs global.database.host (the external PostgreSQL)" -}}
{{- end -}}
{{- if and (not .Values.postgres.enabled) (not $db.existingSecret) -}}
{{- $errors = append $errors "postgres.enabled=false needs global.database.existingSecret: the migration hook runs before this release's own Secret exists" -}}
{{- end -}}
{{- if and .Values.postgres.enabled $db.host -}}
{{- $errors = append $errors "global.database.host is for an external database; set postgres.enabled=false too" -}}
{{- end -}}
{{- if and (not .Values.redis.enabled) (not .Values.global.redis.url) -}}
{{- $errors = append $errors "redis.enabled=false needs global.redis.url (the external Redis)" -}}
{{- end -}}
{{- if and (ne .Values.exposure.type "none") (not .Values.gateway.enabled) -}}
{{- $errors = append $errors (printf "exposure.type=%s needs gateway.enabled: the %s sends everything to the gateway (or set exposure.type=none)" .Values.exposure.type (ternary "HTTPRoute" "Ingress" (eq .Values.exposure.type "httpRoute"))) -}}
{{- end -}}
{{- if $errors -}}
{{- fail (printf "\n%s" (join "\n" $errors)) -}}
{{- end -}}
{{- end -}}
