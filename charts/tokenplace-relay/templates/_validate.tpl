{{/*
Checks that values.schema.json can't express (relations between values, IP ranges) and fails the
install with a message that names the value and says what to set instead. Included once, from
deployment.yaml. Types, formats and unknown keys are refused earlier by values.schema.json.
*/}}
{{- define "tokenplace-relay.validate" -}}
{{- $ipv4 := "^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$" }}
{{- $gpu := .Values.gpuExternalName }}
{{- $endpoints := include "tokenplace-relay.list" $gpu.headless.endpoints | fromJsonArray }}
{{- $egressCidrs := include "tokenplace-relay.list" .Values.networkPolicy.egressCidrs | fromJsonArray }}
{{- $hosts := include "tokenplace-relay.ingressHosts" . | fromJsonArray }}
{{- $tls := include "tokenplace-relay.ingressTls" . | fromJsonArray }}

{{- /* GPU Service ------------------------------------------------------------------------------ */}}
{{- if $gpu.enabled }}
{{- if $gpu.headless.enabled }}
{{- if not $endpoints }}
{{- fail "gpuExternalName.headless.enabled=true needs the GPU host's IPv4 address(es) in gpuExternalName.headless.endpoints, e.g. --set gpuExternalName.headless.endpoints={192.168.1.50}" }}
{{- end }}
{{- range $endpoints }}
{{- if not (regexMatch $ipv4 (toString .)) }}
{{- fail (printf "gpuExternalName.headless.endpoints: %q is not an IPv4 address (write it like 192.168.1.50, without a prefix length or port)" (toString .)) }}
{{- end }}
{{- if regexMatch "^(0\\.|127\\.|169\\.254\\.|22[4-9]\\.|2[3-5][0-9]\\.)" . }}
{{- fail (printf "gpuExternalName.headless.endpoints: %s is an unspecified, loopback, link-local, multicast or reserved address, which Kubernetes refuses as an endpoint: use the GPU host's LAN or public IPv4 address" .) }}
{{- end }}
{{- end }}
{{- else }}
{{- if not $gpu.host }}
{{- fail "gpuExternalName.host is empty: set it to the DNS name of the GPU host (e.g. gpu-box.lan.example.org), use headless mode with an IP (gpuExternalName.headless.enabled=true, gpuExternalName.headless.endpoints={192.168.1.50}), or set gpuExternalName.enabled=false when upstream.url reaches the GPU host directly" }}
{{- end }}
{{- end }}
{{- if or (regexMatch $ipv4 $gpu.host) (contains ":" $gpu.host) }}
{{- fail (printf "gpuExternalName.host=%s is an IP address, but an ExternalName Service can only carry a DNS name: set gpuExternalName.host to the GPU host's DNS name, or pin the IP with --set gpuExternalName.headless.enabled=true --set gpuExternalName.headless.endpoints={%s}" $gpu.host $gpu.host) }}
{{- end }}

{{- end }}

{{- /* upstream.url ------------------------------------------------------------------------------
  Empty means the GPU Service; an explicit URL always wins (NOTES.txt says when the GPU Service is then
  unused). Without the GPU Service, nothing else says where the GPU server is. */}}
{{- if and (not .Values.upstream.url) (not $gpu.enabled) }}
{{- fail "upstream.url is empty and gpuExternalName.enabled=false, so nothing tells the relay where the GPU server is: set upstream.url to its URL (e.g. http://gpu-box.lan.your-domain.org:5010), or leave gpuExternalName.enabled=true to reach it through the GPU Service" }}
{{- end }}

{{- /* NetworkPolicy ---------------------------------------------------------------------------- */}}
{{- if .Values.networkPolicy.enabled }}
{{- range $egressCidrs }}
{{- if regexMatch "/0$" . }}
{{- fail (printf "networkPolicy.egressCidrs: %s would allow egress to the whole Internet; list only the GPU host, e.g. 192.168.1.50/32 (or set networkPolicy.enabled=false)" .) }}
{{- end }}
{{- end }}
{{- if not (or $egressCidrs (and (include "tokenplace-relay.headless" .) (include "tokenplace-relay.gpuServiceUsed" .)) (include "tokenplace-relay.list" .Values.networkPolicy.extraEgress | fromJsonArray)) }}
{{- $upstreamHost := include "tokenplace-relay.upstreamHost" . }}
{{- $port := include "tokenplace-relay.upstreamPort" . }}
{{- if include "tokenplace-relay.gpuServiceUsed" . }}
{{- fail (printf "networkPolicy.enabled=true but nothing lets the relay reach the GPU host: set networkPolicy.egressCidrs to its address, e.g. --set networkPolicy.egressCidrs={192.168.1.50/32}. The list is empty, and in ExternalName mode the relay connects on port %s to whatever address %s resolves to, which the chart cannot know. Or pin the IP in headless mode (gpuExternalName.headless.enabled=true; its endpoint IPs are allowed by themselves), or set networkPolicy.enabled=false" $port $gpu.host) }}
{{- else }}
{{- fail (printf "networkPolicy.enabled=true but nothing lets the relay reach the GPU host: set networkPolicy.egressCidrs to its address, e.g. --set networkPolicy.egressCidrs={192.168.1.50/32}. The list is empty, and upstream.url names %s (port %s), not the GPU Service, so no headless endpoint stands in for it. Or set networkPolicy.enabled=false" $upstreamHost $port) }}
{{- end }}
{{- end }}
{{- end }}

{{- /* relay.trustProxy ------------------------------------------------------------------------- */}}
{{- range include "tokenplace-relay.list" .Values.relay.trustProxy | fromJsonArray }}
{{- if regexMatch "/0+$" . }}
{{- fail (printf "relay.trustProxy: %s would trust every client's X-Forwarded-For; list only your proxies, e.g. 10.42.0.0/16 for Traefik on k3s" .) }}
{{- end }}
{{- end }}

{{- /* Ingress ---------------------------------------------------------------------------------- */}}
{{- if .Values.ingress.enabled }}
{{- if not $hosts }}
{{- fail "ingress.enabled=true but ingress.hosts is empty: add a host (e.g. relay.your-domain.org) or set ingress.enabled=false" }}
{{- end }}
{{- if not $tls }}
{{- fail "ingress.enabled=true without ingress.tls: the relay would be served over plain HTTP. Add ingress.tls (secretName + hosts; cert-manager issues the certificate) or set ingress.enabled=false" }}
{{- end }}
{{- $tlsHosts := list }}
{{- range $tls }}{{ $tlsHosts = concat $tlsHosts .hosts }}{{ end }}
{{- range $hosts }}
{{- $host := .host }}
{{- $covered := false }}
{{- range $tlsHosts }}{{ if include "tokenplace-relay.tlsCovers" (list . $host) }}{{ $covered = true }}{{ end }}{{ end }}
{{- if not $covered }}
{{- $wildcard := ternary "" (printf " or a wildcard one label above it, *.%s" (regexReplaceAll "^[^.]+\\." $host "")) (or (hasPrefix "*." $host) (lt (len (splitList "." $host)) 3)) }}
{{- fail (printf "ingress host %s is not listed in any ingress.tls[].hosts: it would be served without TLS; add it%s, e.g. --set ingress.tls[0].hosts[0]=%s (a wildcard covers exactly one label: *.example.org covers relay.example.org, not a.relay.example.org)" $host $wildcard $host) }}
{{- end }}
{{- end }}
{{- end }}

{{- /* Shutdown and grace period ---------------------------------------------------------------- */}}
{{- $drain := addf (float64 .Values.relay.shutdownDelaySeconds) (float64 .Values.relay.shutdownTimeoutSeconds) }}
{{- if not (kindIs "invalid" .Values.terminationGracePeriodSeconds) }}
{{- if le (float64 .Values.terminationGracePeriodSeconds) $drain }}
{{- fail (printf "terminationGracePeriodSeconds=%d must exceed relay.shutdownDelaySeconds + relay.shutdownTimeoutSeconds (%s), or the kubelet kills the relay while it drains; raise it or leave it null to have it computed" (int64 .Values.terminationGracePeriodSeconds) (include "tokenplace-relay.decimal" $drain)) }}
{{- end }}
{{- end }}

{{- /* Scaling ---------------------------------------------------------------------------------- */}}
{{- if .Values.autoscaling.enabled }}
{{- if gt (int64 .Values.autoscaling.minReplicas) (int64 .Values.autoscaling.maxReplicas) }}
{{- fail (printf "autoscaling.minReplicas=%d is greater than autoscaling.maxReplicas=%d" (int64 .Values.autoscaling.minReplicas) (int64 .Values.autoscaling.maxReplicas)) }}
{{- end }}
{{- if and (kindIs "invalid" .Values.autoscaling.targetCPUUtilizationPercentage) (kindIs "invalid" .Values.autoscaling.targetMemoryUtilizationPercentage) }}
{{- fail "autoscaling.enabled=true needs autoscaling.targetCPUUtilizationPercentage or autoscaling.targetMemoryUtilizationPercentage" }}
{{- end }}
{{- end }}
{{- if .Values.podDisruptionBudget.enabled }}
{{- if and (kindIs "invalid" .Values.podDisruptionBudget.minAvailable) (kindIs "invalid" .Values.podDisruptionBudget.maxUnavailable) }}
{{- fail "podDisruptionBudget.enabled=true needs podDisruptionBudget.maxUnavailable or podDisruptionBudget.minAvailable (or set podDisruptionBudget.enabled=false)" }}
{{- end }}
{{- end }}

{{- /* helmTest --------------------------------------------------------------------------------- */}}
{{- with .Values.helmTest.upstreamPath }}
{{- $own := regexReplaceAll "[?].*$" . "" | trimSuffix "/" }}
{{- if has $own (list "/healthz" "/livez" "/metrics") }}
{{- fail (printf "helmTest.upstreamPath=%s is answered by the relay itself, never by the GPU server, so it would prove nothing: choose a path server.py answers, e.g. /" .) }}
{{- end }}
{{- end }}

{{- /* upstream.ca and extra volumes ------------------------------------------------------------ */}}
{{- $ca := .Values.upstream.ca }}
{{- if and $ca.existingConfigMap $ca.existingSecret }}
{{- fail (printf "upstream.ca.existingConfigMap=%s and upstream.ca.existingSecret=%s are both set: the CA comes from one of them, so set only one" $ca.existingConfigMap $ca.existingSecret) }}
{{- end }}
{{- $volumes := list "tmp" }}
{{- if include "tokenplace-relay.upstreamCaFile" . }}{{ $volumes = append $volumes "upstream-ca" }}{{ end }}
{{- range include "tokenplace-relay.list" .Values.extraVolumes | fromJsonArray }}
{{- if has .name $volumes }}
{{- fail (printf "extraVolumes has a volume named %s, which %s: give it another name" .name (ternary "another extraVolumes entry already uses" "the chart uses itself" (not (has .name (list "tmp" "upstream-ca"))))) }}
{{- end }}
{{- $volumes = append $volumes .name }}
{{- end }}
{{- $mountPaths := list "/tmp" }}
{{- if include "tokenplace-relay.upstreamCaFile" . }}{{ $mountPaths = append $mountPaths (include "tokenplace-relay.upstreamCaDir" .) }}{{ end }}
{{- range include "tokenplace-relay.list" .Values.extraVolumeMounts | fromJsonArray }}
{{- if not (has .name $volumes) }}
{{- fail (printf "extraVolumeMounts mounts %s, but no volume has that name: add it to extraVolumes (volumes now: %s)" .name (join ", " $volumes)) }}
{{- end }}
{{- $path := trimSuffix "/" .mountPath }}
{{- if has $path $mountPaths }}
{{- fail (printf "extraVolumeMounts mounts %s at %s, where another volume is already mounted: choose another mountPath" .name .mountPath) }}
{{- end }}
{{- $mountPaths = append $mountPaths $path }}
{{- end }}

{{- /* Redis ------------------------------------------------------------------------------------
  redis.existingSecret names the Secret that holds RELAY_REDIS_URL. Neither message repeats the value:
  a URL pasted there by mistake carries the password. */}}
{{- with .Values.redis.existingSecret }}
{{- if contains "://" . }}
{{- fail (printf "redis.existingSecret holds a URL, but it must name a Secret that holds the URL, never the URL itself (it carries the password, which would be kept in the release's values): kubectl -n %s create secret generic relay-redis --from-literal=url='redis://:PASSWORD@redis-master.redis:6379', then --set redis.existingSecret=relay-redis" $.Release.Namespace) }}
{{- end }}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$" .) }}
{{- fail "redis.existingSecret is not a Secret name (lower-case letters, digits, '-' and '.'): it names the Secret that holds the Redis URL, e.g. relay-redis" }}
{{- end }}
{{- end }}

{{- /* Environment and labels ------------------------------------------------------------------- */}}
{{- $managed := list "RELAY_PORT" "RELAY_WORKERS" "RELAY_LOG_LEVEL" "UPSTREAM_URL" "RELAY_UPSTREAM_TIMEOUT_SECONDS" "RELAY_BODY_LIMIT_BYTES" "RELAY_SHUTDOWN_DELAY_SECONDS" "RELAY_SHUTDOWN_TIMEOUT_SECONDS" "RELAY_TRUST_PROXY" "RELAY_METRICS_TOKEN" "RELAY_MAX_CONCURRENT" "RELAY_QUEUE_LIMIT" "RELAY_QUEUE_TIMEOUT_SECONDS" "RELAY_MAX_CONCURRENT_PER_CLIENT" "RELAY_RATE_LIMIT" "RELAY_RATE_LIMIT_WINDOW_SECONDS" "RELAY_MAX_EVENT_LOOP_DELAY_MS" "RELAY_REDIS_URL" }}
{{- if include "tokenplace-relay.upstreamCaFile" . }}{{ $managed = append $managed "NODE_EXTRA_CA_CERTS" }}{{ end }}
{{- $seen := list }}
{{- range include "tokenplace-relay.list" .Values.extraEnv | fromJsonArray }}
{{- if has .name $managed }}
{{- $hint := dict "NODE_EXTRA_CA_CERTS" " (upstream.ca mounts the CA and sets it)" "RELAY_REDIS_URL" " (redis.existingSecret names the Secret that holds it)" }}
{{- fail (printf "extraEnv sets %s, which the chart sets from its values (see the chart's README): set that value instead%s" .name (get $hint .name)) }}
{{- end }}
{{- if has .name $seen }}
{{- fail (printf "extraEnv sets %s twice" .name) }}
{{- end }}
{{- $seen = append $seen .name }}
{{- end }}
{{- range $key, $_ := include "tokenplace-relay.selectorLabels" . | fromYaml }}
{{- if hasKey $.Values.podLabels $key }}
{{- fail (printf "podLabels may not set %s: the chart uses it to select the relay's pods" $key) }}
{{- end }}
{{- end }}

{{- /* ServiceMonitor --------------------------------------------------------------------------- */}}
{{- if .Values.metrics.serviceMonitor.enabled }}
{{- $interval := include "tokenplace-relay.durationMs" .Values.metrics.serviceMonitor.interval | int64 }}
{{- $timeout := include "tokenplace-relay.durationMs" .Values.metrics.serviceMonitor.scrapeTimeout | int64 }}
{{- if gt $timeout $interval }}
{{- fail (printf "metrics.serviceMonitor.scrapeTimeout=%s is longer than metrics.serviceMonitor.interval=%s; Prometheus refuses that" .Values.metrics.serviceMonitor.scrapeTimeout .Values.metrics.serviceMonitor.interval) }}
{{- end }}
{{- end }}

{{- /* PrometheusRule --------------------------------------------------------------------------- */}}
{{- $pr := .Values.metrics.prometheusRule }}
{{- if $pr.enabled }}
{{- if not .Values.metrics.serviceMonitor.enabled }}
{{- fail "metrics.prometheusRule.enabled=true needs metrics.serviceMonitor.enabled=true: the alerts watch the targets the chart's ServiceMonitor creates (their job and namespace), so without it RelayDown would fire forever and the others never. Add --set metrics.serviceMonitor.enabled=true" }}
{{- end }}
{{- if not (include "tokenplace-relay.enabledAlerts" . | fromJsonArray) }}
{{- fail "metrics.prometheusRule.enabled=true but every alert under metrics.prometheusRule.alerts is disabled: enable one, or set metrics.prometheusRule.enabled=false" }}
{{- end }}
{{- $window := include "tokenplace-relay.durationMs" $pr.rateWindow | int64 }}
{{- $interval := include "tokenplace-relay.durationMs" .Values.metrics.serviceMonitor.interval | int64 }}
{{- if lt $window (mul 2 $interval) }}
{{- fail (printf "metrics.prometheusRule.rateWindow=%s is shorter than twice metrics.serviceMonitor.interval=%s: rate() needs two samples in its window, so the alerts would never fire; use at least %s (four times the interval is safer)" $pr.rateWindow .Values.metrics.serviceMonitor.interval (ternary (printf "%ds" (div (mul 2 $interval) 1000)) (printf "%dms" (mul 2 $interval)) (eq (mod (mul 2 $interval) 1000) 0))) }}
{{- end }}
{{- if and (has "RelayOverloaded" (include "tokenplace-relay.enabledAlerts" . | fromJsonArray)) (not (include "tokenplace-relay.list" $pr.alerts.RelayOverloaded.reasons | fromJsonArray)) }}
{{- fail "metrics.prometheusRule.alerts.RelayOverloaded.reasons is empty, so RelayOverloaded would count no rejection: list reasons (queue_full, queue_timeout, overloaded, client_concurrency, rate_limit), or set metrics.prometheusRule.alerts.RelayOverloaded.enabled=false" }}
{{- end }}
{{- end }}
{{- end }}

{{/* A Prometheus duration (e.g. 1m30s, 500ms) in milliseconds; the schema guarantees the shape. */}}
{{- define "tokenplace-relay.durationMs" -}}
{{- $ms := 0 }}
{{- $units := dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000 "d" 86400000 "w" 604800000 "y" 31536000000 }}
{{- range regexFindAll "[0-9]+(ms|s|m|h|d|w|y)" . -1 }}
{{- $unit := regexFind "[a-z]+$" . }}
{{- $ms = add $ms (mul (trimSuffix $unit . | int64) (get $units $unit)) }}
{{- end }}
{{- $ms }}
{{- end }}
