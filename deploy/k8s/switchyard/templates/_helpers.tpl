{{- define "switchyard.fullname" -}}{{ .Release.Name }}-switchyard{{- end -}}
{{- define "switchyard.section" -}}{{ . | replace "-" "_" }}{{- end -}}
{{- define "switchyard.serviceTokensSecret" -}}{{ .Values.serviceTokens.existingSecret | default (printf "%s-service-tokens" (include "switchyard.fullname" .)) }}{{- end -}}
{{- define "switchyard.serviceTokenKey" -}}SWITCHYARD_SERVICE_TOKEN_{{ . | replace "-" "_" | upper }}{{- end -}}
{{- /* The service tokens a role's pod holds: its own, to call others, and
those of the roles allowed to call it. */ -}}
{{- define "switchyard.serviceTokenRoles" -}}
{{- $needs := dict "edge" (list "edge") "router" (list "router" "edge") "adapter" (list "adapter" "router") "cache" (list "router") "ledger" (list "router") "control-plane" (list "edge" "router" "adapter") -}}
{{- get $needs . | join "," -}}
{{- end -}}
