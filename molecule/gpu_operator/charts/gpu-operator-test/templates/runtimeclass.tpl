# The operator creates this RuntimeClass once its toolkit has configured containerd.
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata:
  name: {{ .Values.operator.runtimeClass }}
handler: {{ .Values.operator.runtimeClass }}
