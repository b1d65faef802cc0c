{{/* The Secret with the admin password and, unless jwt.existingSecret, the signing key. */}}
{{- define "auth.secretName" -}}{{ printf "%s-secrets" (include "auth.fullname" .) | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- define "auth.keysSecretName" -}}{{ .Values.jwt.existingSecret | default (include "auth.secretName" .) }}{{- end -}}
{{- define "auth.adminSecretName" -}}{{ .Values.admin.existingSecret | default (include "auth.secretName" .) }}{{- end -}}

{{- define "auth.validateValues" -}}
{{- $errors := list -}}
{{- if not (has .Values.jwt.algorithm (list "EdDSA" "RS256")) -}}
{{- $errors = append $errors (printf "auth.jwt.algorithm must be EdDSA or RS256, not %q" .Values.jwt.algorithm) -}}
{{- end -}}
{{- if kindIs "invalid" .Values.trustedProxies -}}
{{- $errors = append $errors "auth.trustedProxies must be set: the CIDRs of the pods in front of auth (the gateway's and the accounts page's, i.e. the cluster's pod network; minikube: [10.244.0.0/16]), or [] to believe no X-Forwarded-For" -}}
{{- end -}}
{{- if lt (int .Values.bcryptRounds) 12 -}}
{{- $errors = append $errors "auth.bcryptRounds must be at least 12 (the design's floor)" -}}
{{- end -}}
{{- if $errors -}}
{{- fail (printf "\n%s" (join "\n" $errors)) -}}
{{- end -}}
{{- end -}}
