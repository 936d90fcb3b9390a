apiVersion: {{ .Values.inferencePool.apiVersion }}
kind: InferencePool
metadata:
  name: {{ .Release.Name }}
  namespace: {{ .Release.Namespace }}
spec:
  targetPorts:
    {{- toYaml .Values.inferencePool.targetPorts | nindent 4 }}
  selector:
    matchLabels:
      {{- toYaml (required "inferencePool.modelServers.matchLabels is required" (.Values.inferencePool.modelServers | default dict).matchLabels) | nindent 6 }}
  endpointPickerRef:
    name: {{ include "test-inferencepool.epp" . }}
    port:
      number: {{ .Values.inferenceExtension.extProcPort }}
