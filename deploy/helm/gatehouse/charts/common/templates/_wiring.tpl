{{/*
How the services find PostgreSQL and Redis, from the umbrella chart's
global values, so the auth Deployment, the migration Job and the postgres
StatefulSet agree on one Secret and one address.
*/}}

{{/* The Secret holding the database password (key global.database.passwordKey). */}}
{{- define "common.databaseSecretName" -}}
{{- .Values.global.database.existingSecret | default (printf "%s-database" .Release.Name | trunc 63 | trimSuffix "-") -}}
{{- end -}}

{{/* The database host: the external one when set, else the bundled postgres Service. */}}
{{- define "common.databaseHost" -}}
{{- .Values.global.database.host | default (include "common.siblingName" (dict "context" . "component" "postgres")) -}}
{{- end -}}

{{/*
DATABASE_URL for the auth service, built by Kubernetes from the password
Secret ($(VAR) expansion), so the password never appears in a manifest. The
password must therefore be URL-safe (generated ones are alphanumeric).
*/}}
{{- define "common.databaseEnv" -}}
- name: DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "common.databaseSecretName" . }}
      key: {{ .Values.global.database.passwordKey }}
- name: DATABASE_URL
  value: {{ printf "postgresql://%s:$(DATABASE_PASSWORD)@%s:%v/%s" .Values.global.database.user (include "common.databaseHost" .) .Values.global.database.port .Values.global.database.name | quote }}
{{- end -}}

{{/* The Secret the bundled redis chart generates: each service's Redis password and the ACL file. */}}
{{- define "common.redisSecretName" -}}
{{- printf "%s-redis-users" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
REDIS_URL for one service: the external URL when global.redis.url is set, else
the bundled Redis as that service's own ACL user, the password coming from the
generated Secret by $(VAR) expansion (never in a manifest; it is alphanumeric,
so URL-safe):
  include "common.redisEnv" (dict "context" . "user" "gateway")
*/}}
{{- define "common.redisEnv" -}}
{{- $ctx := .context -}}
{{- if $ctx.Values.global.redis.url -}}
- name: REDIS_URL
  value: {{ $ctx.Values.global.redis.url | quote }}
{{- else -}}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "common.redisSecretName" $ctx }}
      key: {{ printf "%s-password" .user }}
- name: REDIS_URL
  value: {{ printf "redis://%s:$(REDIS_PASSWORD)@%s:6379/0" .user (include "common.siblingName" (dict "context" $ctx "component" "redis")) | quote }}
{{- end -}}
{{- end -}}
