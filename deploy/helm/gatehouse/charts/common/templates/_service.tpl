{{/*
The ClusterIP Service and the ServiceMonitor every Gatehouse service has,
rendered from the including chart's context:
  include "common.service" (dict "context" . "component" "")
  include "common.service" (dict "context" . "extraPorts" (list (dict "name" "https" "port" 8443)))
  include "common.serviceMonitor" (dict "context" . "path" "/metrics")
The Service's port is named http and targets the container port named http;
each of "extraPorts" (name, port) targets the container port of its name.
The ServiceMonitor scrapes the Service port named "port" (default http) of the
Services matching "selector" (default the chart's selector labels).
*/}}

{{- define "common.service" -}}
{{- $ctx := .context -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "common.fullname" $ctx }}
  labels:
    {{- include "common.labels" $ctx | nindent 4 }}
spec:
  type: {{ $ctx.Values.service.type }}
  selector:
    {{- include "common.selectorLabels" $ctx | nindent 4 }}
  ports:
    - name: http
      port: {{ $ctx.Values.service.port }}
      targetPort: http
      protocol: TCP
    {{- range .extraPorts }}
    - name: {{ .name }}
      port: {{ .port }}
      targetPort: {{ .name }}
      protocol: TCP
    {{- end }}
{{- end -}}

{{- define "common.serviceMonitor" -}}
{{- $ctx := .context -}}
{{- if include "common.prometheusOperator" $ctx -}}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "common.fullname" $ctx }}
  labels:
    {{- include "common.labels" $ctx | nindent 4 }}
spec:
  # job=<chart name> (gateway, auth, ...), the label the alert rules group by.
  jobLabel: app.kubernetes.io/name
  selector:
    matchLabels:
      {{- .selector | default (include "common.selectorLabels" $ctx) | nindent 6 }}
  endpoints:
    - port: {{ .port | default "http" }}
      path: {{ .path }}
      interval: {{ $ctx.Values.serviceMonitor.interval }}
{{- end -}}
{{- end -}}
