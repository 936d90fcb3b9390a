{{- if .Values.inferenceExtension.monitoring.prometheus.enabled }}
{{- if .Values.inferenceExtension.monitoring.prometheus.auth.enabled }}
apiVersion: v1
kind: Secret
metadata:
  name: {{ .Values.inferenceExtension.monitoring.prometheus.auth.secretName }}
  namespace: {{ .Release.Namespace }}
  annotations:
    kubernetes.io/service-account.name: {{ include "test-inferencepool.epp" . }}
type: kubernetes.io/service-account-token
---
{{- end }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "test-inferencepool.epp" . }}-monitor
  namespace: {{ .Release.Namespace }}
spec:
  endpoints:
    - interval: {{ .Values.inferenceExtension.monitoring.interval }}
      port: http-metrics
      path: /metrics
      {{- if .Values.inferenceExtension.monitoring.prometheus.auth.enabled }}
      authorization:
        credentials:
          key: token
          name: {{ .Values.inferenceExtension.monitoring.prometheus.auth.secretName }}
      {{- end }}
  namespaceSelector:
    matchNames:
      - {{ .Release.Namespace }}
  selector:
    matchLabels:
      app.kubernetes.io/name: {{ include "test-inferencepool.epp" . }}
{{- end }}
