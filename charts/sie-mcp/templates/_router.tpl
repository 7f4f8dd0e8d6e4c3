{{/* The router's HAProxy configuration and map file. The same text as sie_mcp/router.py's render_haproxy and
     render_map for the same inputs (tests/test_chart.py renders both and compares them line for line): change
     them together. Inputs: the pools (their headless Services' DNS names, server-template slots = most replicas),
     the default model, the server's body limit and timeouts, router.*. */}}

{{- define "sie-mcp.routerPools" -}}
{{- $a := .Values.autoscaling }}
{{- $managed := or $a.keda.enabled $a.httpAddon.enabled $a.hpa.enabled }}
{{- $out := list }}
{{- range $pool := .Values.pools }}
{{- $ctx := dict }}
{{- include "sie-mcp.poolContext" (dict "root" $ "pool" $pool "out" $ctx) }}
{{- $slots := ternary $ctx.Values.autoscaling.maxReplicas $ctx.Values.replicaCount $managed }}
{{- $ids := list }}
{{- range $pool.catalog }}{{ $ids = append $ids .id }}{{ end }}
{{- $dns := printf "%s.%s.svc.cluster.local:%d" (include "sie-mcp.serverName" $ctx) $.Release.Namespace (int $.Values.server.port) }}
{{- $out = append $out (dict "name" $pool.name "models" $ids "dns" $dns "slots" (int $slots)) }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{- define "sie-mcp.routerMap" -}}
{{- range (include "sie-mcp.routerPools" . | fromJsonArray) }}{{ $pool := .name }}{{ range .models }}{{ . }} {{ $pool }}
{{ end }}{{ end }}
{{- end }}

{{- define "sie-mcp.haproxyConfig" -}}
{{- $v := .Values }}
{{- $pools := include "sie-mcp.routerPools" . | fromJsonArray }}
{{- $first := (first $pools).name }}
{{- $serverTimeout := printf "%dms" (round (mulf (addf $v.server.requestTimeoutS 5) 1000) 0 | int64) }}
{{- $inter := round (mulf $v.router.checkIntervalS 1000) 0 | int64 }}
{{- $defaultModel := $v.router.defaultModel | default $v.server.defaultEmbedModel -}}
# Rendered by sie-mcp (sie_mcp/router.py; the chart: templates/_router.tpl). Do not edit: re-render.
global
    maxconn {{ int64 $v.router.maxConnections }}
    # A request body is read into one buffer to find its model; larger bodies pass through, keyed by the
    # X-SIE-Model header or the default model.
    tune.bufsize {{ int64 $v.router.bufferBytes }}
    hard-stop-after {{ $serverTimeout }}
    log stdout format raw local0

defaults
    mode http
    log global
    option httplog
    option dontlog-normal
    option forwardfor
    timeout connect 5s
    timeout http-request {{ round (mulf $v.server.readTimeoutS 1000) 0 | int64 }}ms
    timeout client {{ $serverTimeout }}
    timeout server {{ $serverTimeout }}
    timeout http-keep-alive 60s
    timeout check 3s
    # Layer-7 retries (a response never came) for idempotent calls only: the frontend disables them for others.
    # Connection failures are retried for every call (nothing reached the replica).
    retries 2
    retry-on conn-failure empty-response
    option redispatch 1

frontend sie
    bind 0.0.0.0:{{ int $v.server.port }}
    option http-buffer-request
    http-request deny deny_status 413 if { req.hdr_val(content-length) gt {{ int64 $v.server.maxBodyBytes }} }
    acl rest path_beg /v1/tools/
    acl compatible path /v1/embeddings /v1/rerank
    acl mcp path /mcp
    # The model key: the body's model (REST, OpenAI, Cohere), params.arguments.model (MCP tools/call).
    http-request set-var(txn.model) req.body,json_query('$.model') if METH_POST rest || METH_POST compatible
    http-request set-var(txn.tool) req.body,json_query('$.params.name') if METH_POST mcp
    http-request set-var(txn.model) req.body,json_query('$.params.arguments.model') if METH_POST mcp
    http-request set-var(txn.model) req.hdr(x-sie-model) if !{ var(txn.model) -m found } { req.hdr(x-sie-model) -m found }
    http-request set-var(txn.model) str({{ $defaultModel }}) if !{ var(txn.model) -m found } || { var(txn.model) -m len 0 }
    # Idempotent calls may be retried on another replica; the rest only after a connection failure.
    acl retryable path /v1/tools/embed /v1/tools/rerank /v1/tools/classify /v1/tools/extract_entities /v1/tools/search /v1/embeddings /v1/rerank
    acl retryable var(txn.tool) -m str embed rerank classify extract_entities search
    acl retryable method GET HEAD
    http-request disable-l7-retry if !retryable
    use_backend pool_%[var(txn.model),map(/usr/local/etc/haproxy/models.map,{{ $first }})]
    default_backend pool_{{ $first }}
{{- range $pools }}

backend pool_{{ .name }}
    balance hash var(txn.model)
    hash-type consistent sdbm avalanche
    hash-balance-factor {{ int $v.router.balanceFactor }}
    option httpchk
    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host localhost
    http-check expect status 200
    default-server check inter {{ $inter }}ms fastinter {{ min $inter 500 }}ms fall 2 rise 2 observe layer4 error-limit 1 on-error mark-down
    server-template r 1-{{ int .slots }} {{ .dns }} resolvers dns init-addr none resolve-prefer ipv4
{{- end }}

resolvers dns
    parse-resolv-conf
    accepted_payload_size 8192
    hold valid 5s
    hold obsolete 5s
    timeout resolve 1s
    timeout retry 1s

frontend metrics
    bind 0.0.0.0:{{ int $v.router.metricsPort }}
    option dontlog-normal
    http-request use-service prometheus-exporter if { path /metrics }
    http-request return status 200 content-type text/plain string "ok\n" if { path /healthz }
    http-request deny deny_status 404
{{ end }}
