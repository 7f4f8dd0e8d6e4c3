{{/* Names: every helper is namespaced by the chart ("sie-mcp."). */}}

{{- define "sie-mcp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sie-mcp.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "sie-mcp.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sie-mcp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sie-mcp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The name of a Deployment of server pods and of its objects: the release's, or <release>-<pool> for a pool. */}}
{{- define "sie-mcp.serverName" -}}
{{- $fullname := include "sie-mcp.fullname" . }}
{{- ternary (printf "%s-%s" $fullname .Pool) $fullname (ne .Pool "") }}
{{- end }}

{{/* Pod selector: the release's labels, and the pool's name for a pool's pods (its Deployment and headless
     Service select only them). The argument is a context from "sie-mcp.poolContext". */}}
{{- define "sie-mcp.podSelectorLabels" -}}
{{ include "sie-mcp.selectorLabels" . }}
{{- with .Pool }}
sie-mcp/pool: {{ . }}
{{- end }}
{{- end }}

{{/* A render context for one pool's objects (or, with an empty pool, the release's own): .root's values with the
     pool's fields laid over them, set on .out (Values, Pool, Release, Chart, Template, Files, Capabilities).
     A pool's catalog entries are its catalog and its prefetch list; preload defaults to its pinned entries,
     else its first. */}}
{{- define "sie-mcp.poolContext" -}}
{{- $root := .root }}
{{- $p := .pool }}
{{- $v := deepCopy $root.Values }}
{{- $_ := set $v "pools" list }}
{{- $_ := set .out "Pool" "" }}
{{- if $p }}
{{- $ids := list }}
{{- $pinned := list }}
{{- range $p.catalog }}
{{- $ids = append $ids .id }}
{{- if .pinned }}{{ $pinned = append $pinned .id }}{{ end }}
{{- end }}
{{- $_ := set .out "Pool" $p.name }}
{{- $_ := set $v.catalog "models" $p.catalog }}
{{- $_ := set $v.server "preload" ($p.preload | default $pinned | default (list (first $ids))) }}
{{- if hasKey $p "prefetch" }}{{ $_ := set $v.modelCache.prefetch "enabled" $p.prefetch }}{{ end }}
{{- $_ := set $v.modelCache.prefetch "models" $ids }}
{{- with $p.memoryBudget }}{{ $_ := set $v.server "memoryBudget" . }}{{ end }}
{{- with $p.defaultEmbedModel }}{{ $_ := set $v.server "defaultEmbedModel" . }}{{ end }}
{{- if hasKey $p "gpu" }}{{ $_ := set $v.gpu "enabled" $p.gpu }}{{ end }}
{{- range $key := list "resources" "nodeSelector" "tolerations" }}
{{- if hasKey $p $key }}{{ $_ := set $v $key (get $p $key) }}{{ end }}
{{- end }}
{{- with $p.replicas }}{{ $_ := set $v "replicaCount" . }}{{ end }}
{{- with $p.minReplicas }}{{ $_ := set $v.autoscaling "minReplicas" . }}{{ end }}
{{- with $p.maxReplicas }}{{ $_ := set $v.autoscaling "maxReplicas" . }}{{ end }}
{{- with $p.threshold }}{{ $_ := set $v.autoscaling.keda.prometheus "threshold" . }}{{ end }}
{{- end }}
{{- $_ := set .out "Values" $v }}
{{- $_ := set .out "Release" $root.Release }}
{{- $_ := set .out "Chart" $root.Chart }}
{{- $_ := set .out "Template" $root.Template }}
{{- $_ := set .out "Files" $root.Files }}
{{- $_ := set .out "Capabilities" $root.Capabilities }}
{{- end }}

{{- define "sie-mcp.labels" -}}
helm.sh/chart: {{ include "sie-mcp.chart" . }}
{{ include "sie-mcp.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The router's labels: another app name, so that the server pods' selectors (Services, ServiceMonitor,
     PodDisruptionBudget, NetworkPolicy) never match a router pod. */}}
{{- define "sie-mcp.routerSelectorLabels" -}}
app.kubernetes.io/name: {{ include "sie-mcp.name" . }}-router
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "sie-mcp.routerLabels" -}}
helm.sh/chart: {{ include "sie-mcp.chart" . }}
{{ include "sie-mcp.routerSelectorLabels" . }}
app.kubernetes.io/component: router
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "sie-mcp.image" -}}
{{- $tag := .Values.image.tag | default (printf "%s%s" .Chart.AppVersion (ternary "-cuda" "" .Values.gpu.enabled)) }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}

{{- define "sie-mcp.authSecretName" -}}
{{- .Values.auth.existingSecret | default (printf "%s-auth" (include "sie-mcp.fullname" .)) }}
{{- end }}

{{/* Host header values the server accepts: the Service DNS names (with and without the port), the pod IP
     (kubelet probes and Prometheus address pods by IP; $(POD_IP) is expanded by the kubelet), the ingress
     host, the HTTP add-on hosts and autoscaling/allowedHosts extras. Rendered as a JSON list. */}}
{{- define "sie-mcp.allowedHosts" -}}
{{- $svc := include "sie-mcp.fullname" . }}
{{- $ns := .Release.Namespace }}
{{- $port := toString .Values.service.port }}
{{- $hosts := list }}
{{- range $name := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) "$(POD_IP)" "localhost" "127.0.0.1" }}
{{- $hosts = append $hosts $name }}
{{- $hosts = append $hosts (printf "%s:%s" $name $port) }}
{{- end }}
{{- $hosts = append $hosts (printf "$(POD_IP):%d" (int $.Values.server.port)) }}
{{- if .Values.ingress.enabled }}{{ $hosts = append $hosts .Values.ingress.host }}{{ end }}
{{- range .Values.autoscaling.httpAddon.hosts }}{{ $hosts = append $hosts . }}{{ end }}
{{- range .Values.allowedHosts }}{{ $hosts = append $hosts . }}{{ end }}
{{- $hosts | uniq | toJson }}
{{- end }}

{{- define "sie-mcp.httpAddonHosts" -}}
{{- $svc := include "sie-mcp.fullname" . }}
{{- .Values.autoscaling.httpAddon.hosts | default (list (printf "%s.%s.svc.cluster.local" $svc .Release.Namespace)) | toJson }}
{{- end }}

{{/* The KEDA trigger: total queued tool calls of this release's pods. `or vector(0)` makes "no series"
     (no pod running, or none scraped yet) read as 0 instead of an error. */}}
{{- define "sie-mcp.queueDepthQuery" -}}
{{- $matchers := list "model=\"_all\"" (printf "namespace=\"%s\"" .Release.Namespace) (printf "service=\"%s\"" (include "sie-mcp.serverName" .)) }}
{{- with .Values.autoscaling.keda.prometheus.extraMatchers }}{{ $matchers = append $matchers . }}{{ end }}
{{- printf "sum(sie_tool_queue_depth{%s}) or vector(0)" (join "," $matchers) }}
{{- end }}

{{/* Contradictions fail the render with a message that says what to change. */}}
{{- define "sie-mcp.validateValues" -}}
{{- $v := .Values }}
{{- $a := $v.autoscaling }}
{{- if and $a.keda.enabled (not $a.keda.prometheus.serverAddress) }}
{{- fail "autoscaling.keda.enabled needs autoscaling.keda.prometheus.serverAddress (the Prometheus URL KEDA queries)" }}
{{- end }}
{{- if and (eq (int $a.minReplicas) 0) (not $a.httpAddon.enabled) }}
{{- fail "autoscaling.minReplicas 0 needs autoscaling.httpAddon.enabled: with no pod nothing exports the queue depth and clients get connection errors; the HTTP add-on's interceptor holds requests while a pod starts" }}
{{- end }}
{{- if lt (int $a.maxReplicas) (int $a.minReplicas) }}
{{- fail "autoscaling.maxReplicas must be at least autoscaling.minReplicas" }}
{{- end }}
{{- if le (float64 $v.server.drainTimeoutS) (float64 $v.server.requestTimeoutS) }}
{{- fail "server.drainTimeoutS must exceed server.requestTimeoutS: calls accepted before SIGTERM would be cut off" }}
{{- end }}
{{- if le (float64 $v.terminationGracePeriodSeconds) (addf $v.server.preStopSleepS $v.server.drainTimeoutS 5) }}
{{- fail "terminationGracePeriodSeconds must exceed server.preStopSleepS + server.drainTimeoutS + 5 (response flush): the kubelet would kill the pod mid-drain" }}
{{- end }}
{{- if and $v.router.enabled (not $v.pools) }}
{{- fail "router.enabled needs pools: list at least one pool (its catalog entries are the models the router sends to it)" }}
{{- end }}
{{- if and $v.pools (not $v.router.enabled) }}
{{- fail "pools need router.enabled: the router is what sends each model to its pool" }}
{{- end }}
{{- if and $v.pools $a.httpAddon.enabled }}
{{- fail "pools with autoscaling.httpAddon.enabled: scale-to-zero per pool is not supported; use KEDA's queue-depth trigger per pool" }}
{{- end }}
{{- $poolNames := list }}
{{- $poolModels := dict }}
{{- range $v.pools }}
{{- if has .name $poolNames }}{{ fail (printf "pools: the name %s repeats" .name) }}{{ end }}
{{- $poolNames = append $poolNames .name }}
{{- $pool := .name }}
{{- range .catalog }}
{{- if hasKey $poolModels .id }}{{ fail (printf "pools: model %s is in pools %s and %s; a model lives in one pool" .id (get $poolModels .id) $pool) }}{{ end }}
{{- $_ := set $poolModels .id $pool }}
{{- end }}
{{- if lt (int (.maxReplicas | default $a.maxReplicas)) (int (.minReplicas | default $a.minReplicas)) }}
{{- fail (printf "pools: %s: maxReplicas must be at least minReplicas" .name) }}
{{- end }}
{{- end }}
{{- if and $v.gpu.enabled (eq $v.server.device "cpu") }}
{{- fail "gpu.enabled with server.device cpu: the GPU would sit idle; set server.device to auto or cuda" }}
{{- end }}
{{- end }}
