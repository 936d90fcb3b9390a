apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "test-llm-d-modelservice.fullname" . }}
  namespace: {{ .Release.Namespace }}
