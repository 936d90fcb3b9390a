{{- define "test-llm-d-modelservice.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 55 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-llm-d-modelservice" .Release.Name | trunc 55 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "test-llm-d-modelservice.vllmPort" -}}
{{- if .Values.routing.proxy.enabled -}}{{ .Values.routing.proxy.targetPort }}{{- else -}}{{ .Values.routing.servicePort }}{{- end -}}
{{- end -}}
