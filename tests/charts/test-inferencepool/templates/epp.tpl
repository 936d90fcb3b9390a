apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "test-inferencepool.epp" . }}
  namespace: {{ .Release.Namespace }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "test-inferencepool.epp" . }}
  namespace: {{ .Release.Namespace }}
data:
  default-plugins.yaml: |
    apiVersion: inference.networking.x-k8s.io/v1alpha1
    kind: EndpointPickerConfig
    plugins:
    - type: queue-scorer
    - type: kv-cache-utilization-scorer
    - type: prefix-cache-scorer
    schedulingProfiles:
    - name: default
      plugins:
      - pluginRef: queue-scorer
        weight: 2
      - pluginRef: kv-cache-utilization-scorer
        weight: 2
      - pluginRef: prefix-cache-scorer
        weight: 3
---
apiVersion: v1
kind: Service
metadata:
  name: {{ include "test-inferencepool.epp" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    app.kubernetes.io/name: {{ include "test-inferencepool.epp" . }}
spec:
  selector:
    inferencepool: {{ include "test-inferencepool.epp" . }}
  ports:
    - name: grpc-ext-proc
      protocol: TCP
      port: {{ .Values.inferenceExtension.extProcPort }}
    - name: http-metrics
      protocol: TCP
      port: 9090
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "test-inferencepool.epp" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    app.kubernetes.io/name: {{ include "test-inferencepool.epp" . }}
spec:
  replicas: {{ .Values.inferenceExtension.replicas | default 1 }}
  selector:
    matchLabels:
      inferencepool: {{ include "test-inferencepool.epp" . }}
  template:
    metadata:
      labels:
        inferencepool: {{ include "test-inferencepool.epp" . }}
    spec:
      serviceAccountName: {{ include "test-inferencepool.epp" . }}
      containers:
        - name: epp
          image: {{ .Values.inferenceExtension.image.hub }}/{{ .Values.inferenceExtension.image.name }}:{{ .Values.inferenceExtension.image.tag }}
          args:
            - --pool-name
            - {{ .Release.Name }}
            - --config-file
            - /config/{{ .Values.inferenceExtension.pluginsConfigFile }}
          ports:
            - name: grpc
              containerPort: 9002
            - name: grpc-health
              containerPort: 9003
            - name: metrics
              containerPort: 9090
          volumeMounts:
            - name: plugins-config-volume
              mountPath: /config
      volumes:
        - name: plugins-config-volume
          configMap:
            name: {{ include "test-inferencepool.epp" . }}
      {{- with .Values.inferenceExtension.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.inferenceExtension.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
