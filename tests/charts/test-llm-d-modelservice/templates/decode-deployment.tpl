{{- if .Values.decode.create }}
{{- if .Values.routing.proxy.enabled }}
{{- fail "test chart: the routing proxy is not simulated; llm_d disables it" }}
{{- end }}
{{- $model := trimPrefix "hf://" .Values.modelArtifacts.uri }}
{{- $hasModelVolume := false }}
{{- range .Values.decode.containers }}{{ if .mountModelVolume }}{{ $hasModelVolume = true }}{{ end }}{{ end }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "test-llm-d-modelservice.fullname" . }}-decode
  namespace: {{ .Release.Namespace }}
spec:
  replicas: {{ .Values.decode.replicas }}
  selector:
    matchLabels:
      {{- toYaml .Values.modelArtifacts.labels | nindent 6 }}
      llm-d.ai/role: decode
  template:
    metadata:
      labels:
        {{- toYaml .Values.modelArtifacts.labels | nindent 8 }}
        llm-d.ai/role: decode
    spec:
      {{- with .Values.decode.extraConfig }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
      serviceAccountName: {{ include "test-llm-d-modelservice.fullname" . }}
      {{- with .Values.decode.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.decode.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      volumes:
        {{- with .Values.decode.volumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- if $hasModelVolume }}
        - name: model-storage
          emptyDir:
            sizeLimit: {{ .Values.modelArtifacts.size }}
        {{- end }}
      containers:
        {{- range .Values.decode.containers }}
        - name: {{ .name | default "vllm" }}
          image: {{ required "image of container is required" .image }}
          {{- if ne .modelCommand "vllmServe" }}
          {{- fail "test chart: only modelCommand vllmServe is simulated" }}
          {{- end }}
          command: ["vllm", "serve"]
          args:
            - {{ $model | quote }}
            - --port
            - {{ include "test-llm-d-modelservice.vllmPort" $ | quote }}
            - --served-model-name
            - {{ $.Values.modelArtifacts.name | quote }}
            {{- with .args }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          env:
            {{- with .env }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
            {{- if .mountModelVolume }}
            - name: HF_HOME
              value: {{ $.Values.modelArtifacts.mountPath }}
            {{- end }}
            {{- with $.Values.modelArtifacts.authSecretName }}
            - name: HF_TOKEN
              valueFrom:
                secretKeyRef:
                  name: {{ . }}
                  key: HF_TOKEN
            {{- end }}
          {{- with .ports }}
          ports:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with .startupProbe }}
          startupProbe:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with .readinessProbe }}
          readinessProbe:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with .livenessProbe }}
          livenessProbe:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with .resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          volumeMounts:
            {{- with .volumeMounts }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
            {{- if .mountModelVolume }}
            - name: model-storage
              mountPath: {{ $.Values.modelArtifacts.mountPath }}
            {{- end }}
        {{- end }}
{{- end }}
