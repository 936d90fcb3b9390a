{{- range .Values.testChart.deployments }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ . }}
  namespace: {{ $.Release.Namespace }}
  labels:
    app.kubernetes.io/name: {{ . }}
    app.kubernetes.io/instance: {{ $.Release.Name }}
    tokenlabs.io/test-chart: {{ $.Chart.Name }}
spec:
  replicas: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: {{ . }}
      app.kubernetes.io/instance: {{ $.Release.Name }}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {{ . }}
        app.kubernetes.io/instance: {{ $.Release.Name }}
    spec:
      containers:
        - name: stand-in
          image: {{ $.Values.testChart.image }}
{{- end }}
