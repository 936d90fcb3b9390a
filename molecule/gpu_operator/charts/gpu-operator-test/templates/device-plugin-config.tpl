{{- if .Values.devicePlugin.config.create }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Values.devicePlugin.config.name }}
  namespace: {{ .Release.Namespace }}
data:
  {{- range $name, $config := .Values.devicePlugin.config.data }}
  {{ $name }}: {{ $config | quote }}
  {{- end }}
{{- end }}
