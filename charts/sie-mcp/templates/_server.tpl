{{/* A Deployment of server pods: the release's one (no pools), or one pool's. The argument is a render
     context from "sie-mcp.poolContext": the chart's values with the pool's fields laid over them, and .Pool
     (the pool's name, or "" for the release's own Deployment). */}}
{{- define "sie-mcp.serverDeployment" -}}
{{- $fullname := include "sie-mcp.fullname" . }}
{{- $name := include "sie-mcp.serverName" . }}
{{- $managed := or .Values.autoscaling.keda.enabled .Values.autoscaling.httpAddon.enabled .Values.autoscaling.hpa.enabled }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  labels:
    {{- include "sie-mcp.labels" . | nindent 4 }}
    {{- with .Pool }}
    sie-mcp/pool: {{ . }}
    {{- end }}
spec:
  {{- if not $managed }}
  replicas: {{ .Values.replicaCount }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "sie-mcp.podSelectorLabels" . | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  template:
    metadata:
      labels:
        {{- include "sie-mcp.podSelectorLabels" . | nindent 8 }}
        {{- with .Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
        {{- with .Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      {{- with .Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml .Values.podSecurityContext | nindent 8 }}
      # Longer than preStop sleep + drain timeout + response flush (validateValues checks it).
      terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
      {{- if .Values.modelCache.prefetch.enabled }}
      initContainers:
        - name: download-models
          image: {{ include "sie-mcp.image" . }}
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          args: ["download", {{- range (.Values.modelCache.prefetch.models | default .Values.server.preload) }} {{ . | quote }},{{- end }} "--log-level", {{ .Values.server.logLevel | quote }}]
          env:
            - name: HF_HOME
              value: {{ printf "%s/hf" .Values.modelCache.mountPath | quote }}
            {{- if .Values.catalog.models }}
            - name: SIE_CATALOG
              value: /etc/sie-mcp/catalog.yaml
            {{- end }}
          securityContext:
            {{- toYaml .Values.securityContext | nindent 12 }}
          volumeMounts:
            - name: model-cache
              mountPath: {{ .Values.modelCache.mountPath }}
            - name: tmp
              mountPath: /tmp
            {{- if .Values.catalog.models }}
            - name: catalog
              mountPath: /etc/sie-mcp
              readOnly: true
            {{- end }}
      {{- end }}
      containers:
        - name: server
          image: {{ include "sie-mcp.image" . }}
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          args: ["serve"]
          ports:
            - name: http
              containerPort: {{ .Values.server.port }}
              protocol: TCP
          env:
            - name: POD_IP
              valueFrom:
                fieldRef:
                  fieldPath: status.podIP
            - name: SIE_TRANSPORT
              value: http
            # Bind all interfaces inside the pod; Host headers are checked against SIE_ALLOWED_HOSTS.
            - name: SIE_HOST
              value: 0.0.0.0
            - name: SIE_PORT
              value: {{ .Values.server.port | quote }}
            # Stateless MCP: no session lives in a pod, so any replica can take any request and scaling
            # in or out never strands a client's session.
            - name: SIE_STATELESS_HTTP
              value: "true"
            - name: SIE_REQUEST_TIMEOUT_S
              value: {{ .Values.server.requestTimeoutS | quote }}
            - name: SIE_READ_TIMEOUT_S
              value: {{ .Values.server.readTimeoutS | quote }}
            - name: SIE_MAX_BODY_BYTES
              value: {{ .Values.server.maxBodyBytes | int64 | quote }}
            - name: SIE_DRAIN_TIMEOUT_S
              value: {{ .Values.server.drainTimeoutS | quote }}
            - name: SIE_MAX_QUEUE
              value: {{ .Values.server.maxQueue | quote }}
            - name: SIE_DEVICE
              value: {{ ternary "cuda" .Values.server.device (and .Values.gpu.enabled (eq .Values.server.device "auto")) | quote }}
            {{- with .Values.server.memoryBudget }}
            - name: SIE_MEMORY_BUDGET
              value: {{ . | quote }}
            {{- end }}
            {{- if .Values.server.maxBatchTokens }}
            - name: SIE_MAX_BATCH_TOKENS
              value: {{ .Values.server.maxBatchTokens | quote }}
            {{- end }}
            {{- with .Values.server.preload }}
            - name: SIE_PRELOAD
              value: {{ toJson . | quote }}
            {{- end }}
            - name: SIE_DEFAULT_EMBED_MODEL
              value: {{ .Values.server.defaultEmbedModel | quote }}
            - name: SIE_LOG_LEVEL
              value: {{ .Values.server.logLevel | quote }}
            {{- with .Values.server.tools }}
            - name: SIE_TOOLS
              value: {{ join "," . | quote }}
            {{- end }}
            - name: SIE_ALLOWED_HOSTS
              value: {{ include "sie-mcp.allowedHosts" . | quote }}
            {{- if .Values.auth.enabled }}
            - name: SIE_AUTH_TOKEN_FILE
              value: /etc/sie-mcp/auth/{{ .Values.auth.secretKey }}
            {{- end }}
            - name: SIE_METRICS_AUTH
              value: {{ and .Values.auth.enabled .Values.auth.metrics | quote }}
            - name: SIE_DATA_DIR
              value: {{ .Values.data.mountPath | quote }}
            {{- with .Values.data.graphStore.existingSecret }}
            - name: SIE_GRAPH_STORE
              valueFrom:
                secretKeyRef:
                  name: {{ . | quote }}
                  key: {{ $.Values.data.graphStore.secretKey | quote }}
            {{- end }}
            - name: HF_HOME
              value: {{ printf "%s/hf" .Values.modelCache.mountPath | quote }}
            {{- if .Values.catalog.models }}
            - name: SIE_CATALOG
              value: /etc/sie-mcp/catalog.yaml
            {{- end }}
            {{- with .Values.server.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          # Model loading happens before /readyz turns 200: the startup probe's budget covers it, so the
          # liveness probe never kills a pod that is still loading.
          startupProbe:
            httpGet:
              path: /readyz
              port: http
            periodSeconds: {{ .Values.probes.startup.periodSeconds }}
            failureThreshold: {{ .Values.probes.startup.failureThreshold }}
            timeoutSeconds: {{ .Values.probes.startup.timeoutSeconds }}
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
            periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
            failureThreshold: {{ .Values.probes.readiness.failureThreshold }}
            timeoutSeconds: {{ .Values.probes.readiness.timeoutSeconds }}
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
            failureThreshold: {{ .Values.probes.liveness.failureThreshold }}
            timeoutSeconds: {{ .Values.probes.liveness.timeoutSeconds }}
          lifecycle:
            # Terminating pods leave the Service endpoints; the sleep lets proxies and the interceptor
            # catch up (intake stops) before SIGTERM starts the drain: /readyz 503 at once, accepted calls
            # finish, then the listener closes.
            preStop:
              sleep:
                seconds: {{ .Values.server.preStopSleepS }}
          resources:
            {{- $res := deepCopy (.Values.resources | default dict) }}
            {{- if .Values.gpu.enabled }}
            {{- $limits := get $res "limits" | default dict }}
            {{- $_ := set $limits .Values.gpu.resourceName (int .Values.gpu.count) }}
            {{- $_ := set $res "limits" $limits }}
            {{- end }}
            {{- toYaml $res | nindent 12 }}
          securityContext:
            {{- toYaml .Values.securityContext | nindent 12 }}
          volumeMounts:
            - name: model-cache
              mountPath: {{ .Values.modelCache.mountPath }}
            - name: data
              mountPath: {{ .Values.data.mountPath }}
            - name: tmp
              mountPath: /tmp
            {{- if .Values.auth.enabled }}
            - name: auth
              mountPath: /etc/sie-mcp/auth
              readOnly: true
            {{- end }}
            {{- if .Values.catalog.models }}
            - name: catalog
              mountPath: /etc/sie-mcp/catalog.yaml
              subPath: catalog.yaml
              readOnly: true
            {{- end }}
      volumes:
        - name: model-cache
          {{- if .Values.modelCache.persistence.enabled }}
          persistentVolumeClaim:
            claimName: {{ .Values.modelCache.persistence.existingClaim | default (printf "%s-models" $fullname) }}
          {{- else }}
          emptyDir: {}
          {{- end }}
        - name: data
          {{- if .Values.data.persistence.enabled }}
          persistentVolumeClaim:
            claimName: {{ .Values.data.persistence.existingClaim | default (printf "%s-data" $fullname) }}
          {{- else }}
          emptyDir: {}
          {{- end }}
        - name: tmp
          emptyDir: {}
        {{- if .Values.auth.enabled }}
        - name: auth
          secret:
            secretName: {{ include "sie-mcp.authSecretName" . }}
            items:
              - key: {{ .Values.auth.secretKey }}
                path: {{ .Values.auth.secretKey }}
        {{- end }}
        {{- if .Values.catalog.models }}
        - name: catalog
          configMap:
            name: {{ $name }}-catalog
        {{- end }}
      {{- with .Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}
