{{- define "test-inferencepool.epp" -}}
{{ .Release.Name | lower | trim | trunc 40 }}-epp
{{- end -}}
