{{- define "switchyard.fullname" -}}{{ .Release.Name }}-switchyard{{- end -}}
{{- define "switchyard.section" -}}{{ . | replace "-" "_" }}{{- end -}}
