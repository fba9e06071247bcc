{{/* Names ------------------------------------------------------------------------------------- */}}

{{- define "tokenplace-relay.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the relay's objects: 63 characters at most (DNS label). */}}
{{- define "tokenplace-relay.fullname" -}}
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

{{- define "tokenplace-relay.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tokenplace-relay.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tokenplace-relay.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Labels (Kubernetes recommended labels) ---------------------------------------------------------
  Every object gets the common labels; each kind of object adds its own app.kubernetes.io/component:
  relay (the Deployment, its pods, its Service: what the ServiceMonitor selects), gpu-upstream (the GPU
  Service and its endpoints, never selected by the ServiceMonitor) and test (the helm test pod, which the
  Deployment's selector must never adopt). */}}

{{- define "tokenplace-relay.commonLabels" -}}
helm.sh/chart: {{ include "tokenplace-relay.chart" . }}
app.kubernetes.io/name: {{ include "tokenplace-relay.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ include "tokenplace-relay.versionLabel" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tokenplace
{{- end }}

{{/* The image tag when one is set (e.g. sha-1a2b3c4), else appVersion, cut to a valid label value. */}}
{{- define "tokenplace-relay.versionLabel" -}}
{{- default .Chart.AppVersion .Values.image.tag | trunc 63 | trimSuffix "-" | trimSuffix "." | trimSuffix "_" }}
{{- end }}

{{- define "tokenplace-relay.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tokenplace-relay.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: relay
{{- end }}

{{- define "tokenplace-relay.labels" -}}
{{ include "tokenplace-relay.commonLabels" . }}
app.kubernetes.io/component: relay
{{- end }}

{{- define "tokenplace-relay.gpuLabels" -}}
{{ include "tokenplace-relay.commonLabels" . }}
app.kubernetes.io/component: gpu-upstream
{{- end }}

{{- define "tokenplace-relay.testLabels" -}}
{{ include "tokenplace-relay.commonLabels" . }}
app.kubernetes.io/component: test
{{- end }}

{{/* Lists ------------------------------------------------------------------------------------------
  A list value as a JSON list without empty entries, for `fromJsonArray`. Every list value goes through
  it, so null (Helm drops the key), [] and `--set key={}` (which Helm turns into [""]) all mean an
  empty list instead of crashing a template or failing a pattern. */}}
{{- define "tokenplace-relay.list" -}}
{{- $items := list }}
{{- if kindIs "slice" . }}
{{- range . }}
{{- if not (or (kindIs "invalid" .) (and (kindIs "string" .) (eq . ""))) }}{{ $items = append $items . }}{{ end }}
{{- end }}
{{- end }}
{{- toJson $items }}
{{- end }}

{{/* Image ------------------------------------------------------------------------------------- */}}

{{/* repository@sha256:… when a digest is set, else repository:tag (tag defaults to appVersion). */}}
{{- define "tokenplace-relay.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Numbers ------------------------------------------------------------------------------------
  Helm reads numbers from values files as float64, which print as 1.048576e+07: the relay refuses that.
  "tokenplace-relay.integer" prints a plain integer; "tokenplace-relay.decimal" prints a plain decimal
  with at most three fractional digits and no trailing zeros (300, 2.5, 0.25). */}}

{{- define "tokenplace-relay.integer" -}}
{{- printf "%d" (int64 .) }}
{{- end }}

{{- define "tokenplace-relay.decimal" -}}
{{- regexReplaceAll "\\.?0+$" (printf "%.3f" (float64 .)) "" }}
{{- end }}

{{/* Seconds of grace the kubelet gives the pod after SIGTERM: the relay's delay + drain + 15 s margin,
  unless terminationGracePeriodSeconds is set (validated to exceed delay + drain). The relay's own
  backstops fire past delay + drain too: a worker's (or a single process's) after one
  BACKSTOP_MARGIN_MS (5 s, src/shutdown.ts), the cluster primary's after two (10 s), and each logs
  what hung before it exits. 15 s leaves the primary 5 s to do that before the kubelet's SIGKILL;
  at 10 s both would land at the same moment and a hung drain might never be logged. */}}
{{- define "tokenplace-relay.graceMarginSeconds" -}}15{{- end }}
{{/* Seconds past delay + drain after which the relay's own backstop exits: one BACKSTOP_MARGIN_MS for
  a single process (relay.workers=1), two for the cluster primary. */}}
{{- define "tokenplace-relay.backstopSeconds" -}}
{{- if eq (int64 .Values.relay.workers) 1 }}5{{ else }}10{{ end }}
{{- end }}
{{- define "tokenplace-relay.terminationGracePeriodSeconds" -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- $drain := addf (float64 .Values.relay.shutdownDelaySeconds) (float64 .Values.relay.shutdownTimeoutSeconds) }}
{{- printf "%d" (add (int64 (ceil $drain)) (include "tokenplace-relay.graceMarginSeconds" . | int64)) }}
{{- else }}
{{- printf "%d" (int64 .Values.terminationGracePeriodSeconds) }}
{{- end }}
{{- end }}

{{/* Upstream ----------------------------------------------------------------------------------- */}}

{{/* The URL the relay forwards to (UPSTREAM_URL): upstream.url when set, else the GPU Service on its
  port, http://<gpuExternalName.name>:<gpuExternalName.port>. _validate.tpl refuses an empty
  upstream.url without the GPU Service. */}}
{{- define "tokenplace-relay.upstreamUrl" -}}
{{- if .Values.upstream.url }}
{{- .Values.upstream.url }}
{{- else }}
{{- printf "http://%s:%d" .Values.gpuExternalName.name (int64 .Values.gpuExternalName.port) }}
{{- end }}
{{- end }}

{{/* Host of the upstream URL, without port or brackets. */}}
{{- define "tokenplace-relay.upstreamHost" -}}
{{- $u := urlParse (include "tokenplace-relay.upstreamUrl" .) }}
{{- regexReplaceAll "^\\[(.*)\\]$" (regexReplaceAll "(:[0-9]*)$" $u.host "") "${1}" }}
{{- end }}

{{/* Port of the upstream URL: explicit, or 80/443 from the scheme. */}}
{{- define "tokenplace-relay.upstreamPort" -}}
{{- $u := urlParse (include "tokenplace-relay.upstreamUrl" .) }}
{{- $port := regexFind ":[0-9]+$" $u.host | trimPrefix ":" }}
{{- if $port }}{{ $port }}{{ else if eq $u.scheme "https" }}443{{ else }}80{{ end }}
{{- end }}

{{/* Where the upstream CA (upstream.ca) is mounted, and the file NODE_EXTRA_CA_CERTS names; "" when
  no CA is set. */}}
{{- define "tokenplace-relay.upstreamCaDir" -}}/etc/tokenplace-relay/upstream-ca{{- end }}
{{- define "tokenplace-relay.upstreamCaFile" -}}
{{- if or .Values.upstream.ca.existingConfigMap .Values.upstream.ca.existingSecret }}
{{- printf "%s/%s" (include "tokenplace-relay.upstreamCaDir" .) .Values.upstream.ca.key }}
{{- end }}
{{- end }}

{{/* Whether the relay reaches the GPU host through the GPU Service this chart renders: "true" or "".
  True when the upstream host is the Service's name, short or qualified (gpu-server, gpu-server.<ns>,
  gpu-server.<ns>.svc, gpu-server.<ns>.svc.<cluster domain>). An upstream.url on another host leaves
  the Service unused: NOTES.txt says so. */}}
{{- define "tokenplace-relay.gpuServiceUsed" -}}
{{- $gpu := .Values.gpuExternalName }}
{{- if $gpu.enabled }}
{{- $host := include "tokenplace-relay.upstreamHost" . }}
{{- $names := list $gpu.name (printf "%s.%s" $gpu.name .Release.Namespace) (printf "%s.%s.svc" $gpu.name .Release.Namespace) }}
{{- if or (has $host $names) (hasPrefix (printf "%s.%s.svc." $gpu.name .Release.Namespace) $host) }}true{{ end }}
{{- end }}
{{- end }}

{{/* Whether the headless GPU Service (with fixed endpoint IPs) is rendered: "true" or "". */}}
{{- define "tokenplace-relay.headless" -}}
{{- if and .Values.gpuExternalName.enabled .Values.gpuExternalName.headless.enabled }}true{{ end }}
{{- end }}

{{/* The IPv4 endpoints of the GPU host in headless mode, without duplicates, as a JSON list. */}}
{{- define "tokenplace-relay.headlessEndpoints" -}}
{{- if include "tokenplace-relay.headless" . }}
{{- (include "tokenplace-relay.list" .Values.gpuExternalName.headless.endpoints | fromJsonArray) | uniq | toJson }}
{{- else }}[]{{ end }}
{{- end }}

{{/* Ingress -------------------------------------------------------------------------------------- */}}

{{/* ingress.hosts as a JSON list of {host, paths}: a host without paths gets `/` (Prefix), a path
  without pathType gets Prefix, so `--set ingress.hosts[0].host=relay.your-domain.org` is enough
  (Helm replaces the whole list, dropping the default's paths). */}}
{{- define "tokenplace-relay.ingressHosts" -}}
{{- $hosts := list }}
{{- range include "tokenplace-relay.list" .Values.ingress.hosts | fromJsonArray }}
{{- $paths := list }}
{{- range include "tokenplace-relay.list" .paths | fromJsonArray }}
{{- $paths = append $paths (dict "path" .path "pathType" (default "Prefix" .pathType)) }}
{{- end }}
{{- $hosts = append $hosts (dict "host" .host "paths" (default (list (dict "path" "/" "pathType" "Prefix")) $paths)) }}
{{- end }}
{{- toJson $hosts }}
{{- end }}

{{/* ingress.tls as a JSON list of {secretName, hosts}: an entry without secretName gets
  <fullname>-tls (then -tls-1, -tls-2, ...), so `--set ingress.tls[0].hosts[0]=...` is enough too. */}}
{{- define "tokenplace-relay.ingressTls" -}}
{{- $entries := list }}
{{- $fullname := include "tokenplace-relay.fullname" . }}
{{- range $i, $entry := include "tokenplace-relay.list" .Values.ingress.tls | fromJsonArray }}
{{- $fallback := ternary (printf "%s-tls" $fullname) (printf "%s-tls-%d" $fullname $i) (eq $i 0) }}
{{- $entries = append $entries (dict "secretName" (default $fallback $entry.secretName) "hosts" (include "tokenplace-relay.list" $entry.hosts | fromJsonArray)) }}
{{- end }}
{{- toJson $entries }}
{{- end }}

{{/* Whether a TLS host name covers an ingress host: the same name, or a wildcard `*.domain` for a
  host one label below it (TLS wildcards match exactly one label: *.mydomain.org covers
  relay.mydomain.org, not mydomain.org or a.relay.mydomain.org). Called with (list tlsHost host). */}}
{{- define "tokenplace-relay.tlsCovers" -}}
{{- $tlsHost := index . 0 }}
{{- $host := index . 1 }}
{{- if eq $tlsHost $host }}true
{{- else if and (hasPrefix "*." $tlsHost) (not (hasPrefix "*." $host)) (contains "." $host) (eq (trimPrefix "*." $tlsHost) (regexReplaceAll "^[^.]+\\." $host "")) }}true
{{- end }}
{{- end }}

{{/* The CIDRs the NetworkPolicy lets the relay reach on the upstream port, as a JSON list:
  networkPolicy.egressCidrs, plus the headless endpoint IPs while the relay dials the GPU Service. */}}
{{- define "tokenplace-relay.egressCidrs" -}}
{{- $cidrs := include "tokenplace-relay.list" .Values.networkPolicy.egressCidrs | fromJsonArray }}
{{- if include "tokenplace-relay.gpuServiceUsed" . }}
{{- range include "tokenplace-relay.headlessEndpoints" . | fromJsonArray }}
{{- $cidrs = append $cidrs (printf "%s/32" .) }}
{{- end }}
{{- end }}
{{- $cidrs | uniq | toJson }}
{{- end }}

{{/* Pod selector of the chart's helm test pod (admitted by the NetworkPolicy). */}}
{{- define "tokenplace-relay.testSelectorLabels" -}}
app.kubernetes.io/name: {{ include "tokenplace-relay.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: test
{{- end }}

{{/* Placeholders still in use, as a JSON list of lines for NOTES.txt: each names the value and what
  to set instead. A placeholder that no longer matters (the GPU host while upstream.url bypasses the
  GPU Service) is not listed. */}}
{{- define "tokenplace-relay.placeholders" -}}
{{- $doc := list "192.0.2." "198.51.100." "203.0.113." }}
{{- $lines := list }}
{{- $exampleHost := "(^|\\.)example\\.(com|net|org)$|\\.(example|invalid|test)$" }}
{{- $gpuUsed := include "tokenplace-relay.gpuServiceUsed" . }}
{{- if and $gpuUsed (not .Values.gpuExternalName.headless.enabled) (regexMatch $exampleHost .Values.gpuExternalName.host) }}
{{- $lines = append $lines (printf "gpuExternalName.host=%s is an example name: set it to your GPU host's DNS name, e.g. --set gpuExternalName.host=gpu-box.lan.your-domain.org (or pin its IP: --set gpuExternalName.headless.enabled=true --set gpuExternalName.headless.endpoints={192.168.1.50})." .Values.gpuExternalName.host) }}
{{- end }}
{{- if not $gpuUsed }}
{{- $upstreamHost := include "tokenplace-relay.upstreamHost" . }}
{{- if regexMatch $exampleHost $upstreamHost }}
{{- $lines = append $lines (printf "upstream.url names %s, an example name: set it to your GPU server's URL." $upstreamHost) }}
{{- end }}
{{- end }}
{{- if and (include "tokenplace-relay.headless" .) $gpuUsed }}
{{- range include "tokenplace-relay.headlessEndpoints" . | fromJsonArray }}
{{- $ip := . }}
{{- range $doc }}{{ if hasPrefix . $ip }}
{{- $lines = append $lines (printf "gpuExternalName.headless.endpoints has %s, a documentation address: set your GPU host's IP, e.g. --set gpuExternalName.headless.endpoints={192.168.1.50}." $ip) }}
{{- end }}{{ end }}
{{- end }}
{{- end }}
{{- if .Values.networkPolicy.enabled }}
{{- range include "tokenplace-relay.list" .Values.networkPolicy.egressCidrs | fromJsonArray }}
{{- $cidr := . }}
{{- range $doc }}{{ if hasPrefix . $cidr }}
{{- if and (include "tokenplace-relay.headless" $) $gpuUsed }}
{{- $lines = append $lines (printf "networkPolicy.egressCidrs has %s, a documentation range (headless mode already allows the endpoint IPs: remove it with --set networkPolicy.egressCidrs={})." $cidr) }}
{{- else }}
{{- $lines = append $lines (printf "networkPolicy.egressCidrs has %s, a documentation range: set your GPU host's IP, e.g. 192.168.1.50/32: --set networkPolicy.egressCidrs={192.168.1.50/32}." $cidr) }}
{{- end }}
{{- end }}{{ end }}
{{- end }}
{{- end }}
{{- if .Values.ingress.enabled }}
{{- $hostNames := list }}
{{- range include "tokenplace-relay.ingressHosts" . | fromJsonArray }}
{{- $hostNames = append $hostNames .host }}
{{- if regexMatch $exampleHost .host }}
{{- $lines = append $lines (printf "ingress host %s is an example name: set ingress.hosts and ingress.tls to your domain, e.g. --set ingress.hosts[0].host=relay.your-domain.org --set ingress.tls[0].hosts[0]=relay.your-domain.org." .host) }}
{{- end }}
{{- end }}
{{- range include "tokenplace-relay.ingressTls" . | fromJsonArray }}
{{- range .hosts }}
{{- if and (regexMatch $exampleHost .) (not (has . $hostNames)) }}
{{- $lines = append $lines (printf "ingress.tls lists %s, an example name: cert-manager can't get a certificate for it, which fails the whole entry; list only your own hosts in ingress.tls." .) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- if contains "your-org" .Values.image.repository }}
{{- $lines = append $lines (printf "image.repository=%s still names the example organisation." .Values.image.repository) }}
{{- end }}
{{- toJson $lines }}
{{- end }}

{{/* Settings that install but probably do not do what the operator wants, as a JSON list of lines
  for NOTES.txt, each saying what to set. */}}
{{- define "tokenplace-relay.warnings" -}}
{{- $lines := list }}
{{- $np := .Values.networkPolicy }}
{{- $sm := .Values.metrics.serviceMonitor }}
{{- if and $sm.enabled (not $sm.labels) }}
{{- $lines = append $lines "metrics.serviceMonitor.labels is empty: kube-prometheus-stack's Prometheus only selects ServiceMonitors labelled with its release (release: <its Helm release name>, unless its serviceMonitorSelector says otherwise), so it will ignore this one. Set e.g. --set metrics.serviceMonitor.labels.release=kube-prometheus-stack." }}
{{- end }}
{{- if and $sm.enabled $sm.jobLabel }}
{{- $serviceLabels := include "tokenplace-relay.labels" . | fromYaml }}
{{- if not (hasKey $serviceLabels $sm.jobLabel) }}
{{- $lines = append $lines (printf "metrics.serviceMonitor.jobLabel=%s is not a label of the relay's Service, so Prometheus names the job after the Service instead; use one it has: %s." $sm.jobLabel (join ", " (keys $serviceLabels | sortAlpha))) }}
{{- end }}
{{- end }}
{{- $pr := .Values.metrics.prometheusRule }}
{{- if and $pr.enabled (not $pr.labels) }}
{{- $lines = append $lines "metrics.prometheusRule.labels is empty: kube-prometheus-stack's Prometheus only loads PrometheusRules labelled with its release (release: <its Helm release name>, unless its ruleSelector says otherwise), so the alerts would never be evaluated. Set e.g. --set metrics.prometheusRule.labels.release=kube-prometheus-stack." }}
{{- end }}
{{- if and $pr.enabled $sm.enabled }}
{{- range include "tokenplace-relay.list" $sm.relabelings | fromJsonArray }}
{{- if has (toString .targetLabel) (list "job" "namespace") }}
{{- $lines = append $lines (printf "metrics.serviceMonitor.relabelings rewrites the %s label, but the alerts select the targets by job=%s and namespace=%s, as the Prometheus Operator labels them: they would watch nothing (and RelayDown would fire). Drop that relabeling, or set metrics.serviceMonitor.jobLabel to name the job instead." .targetLabel (include "tokenplace-relay.metricsJob" $) $.Release.Namespace) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and .Values.metrics.dashboard.enabled (not .Values.metrics.dashboard.labels) }}
{{- $lines = append $lines "metrics.dashboard.labels is empty, so no Grafana sidecar picks the dashboard ConfigMap up: set the label your sidecar watches (kube-prometheus-stack: --set metrics.dashboard.labels.grafana_dashboard=1), or import the dashboard by hand as shown below." }}
{{- end }}
{{- if not (kindIs "invalid" .Values.terminationGracePeriodSeconds) }}
{{- $drain := addf (float64 .Values.relay.shutdownDelaySeconds) (float64 .Values.relay.shutdownTimeoutSeconds) }}
{{- $backstop := include "tokenplace-relay.backstopSeconds" . | int64 }}
{{- $limit := addf $drain (float64 $backstop) }}
{{- if le (float64 .Values.terminationGracePeriodSeconds) $limit }}
{{- $lines = append $lines (printf "terminationGracePeriodSeconds=%d ends no later than the relay's own backstop (relay.shutdownDelaySeconds + relay.shutdownTimeoutSeconds + %d s = %s s with relay.workers=%d), so the kubelet's SIGKILL can land before the relay logs which requests hung its drain. Leave it null (computed: %s) or set it above %s." (int64 .Values.terminationGracePeriodSeconds) $backstop (include "tokenplace-relay.decimal" $limit) (int64 .Values.relay.workers) (add (int64 (ceil $drain)) (include "tokenplace-relay.graceMarginSeconds" . | int64) | toString) (include "tokenplace-relay.decimal" $limit)) }}
{{- end }}
{{- end }}
{{- $limits := .Values.relay.limits }}
{{- $perClient := or (gt (int64 $limits.maxConcurrentPerClient) 0) (gt (int64 $limits.rateLimit) 0) }}
{{- if and .Values.ingress.enabled $perClient (not (include "tokenplace-relay.list" .Values.relay.trustProxy | fromJsonArray)) }}
{{- $counted := list }}
{{- if gt (int64 $limits.maxConcurrentPerClient) 0 }}{{ $counted = append $counted (printf "%d requests at once" (int64 $limits.maxConcurrentPerClient)) }}{{ end }}
{{- if gt (int64 $limits.rateLimit) 0 }}{{ $counted = append $counted (printf "%d requests per %s s" (int64 $limits.rateLimit) (include "tokenplace-relay.decimal" $limits.rateLimitWindowSeconds)) }}{{ end }}
{{- $lines = append $lines (printf "relay.trustProxy is empty, so behind the Ingress every request comes from the ingress controller's address and the per-client limits (relay.limits.maxConcurrentPerClient, relay.limits.rateLimit) count all clients as one: %s for everybody together. Trust the ingress controller's pods, e.g. --set relay.trustProxy={10.42.0.0/16} on k3s (kubectl -n kube-system get pods -l app.kubernetes.io/name=traefik -o wide shows their addresses)." (join " and " $counted)) }}
{{- end }}
{{- $replicas := include "tokenplace-relay.maxReplicas" . | int64 }}
{{- if and (gt $replicas 1) (gt (int64 $limits.rateLimit) 0) (not .Values.redis.existingSecret) }}
{{- $scale := ternary (printf "up to %d replicas (autoscaling.maxReplicas)" $replicas) (printf "%d replicas (replicaCount)" $replicas) (and .Values.autoscaling.enabled true) }}
{{- $lines = append $lines (printf "relay.limits.rateLimit=%d is counted by each pod and no Redis shares the count (redis.existingSecret is empty), so with %s a client gets up to %d requests per %s s. Share it: kubectl -n %s create secret generic relay-redis --from-literal=url='redis://:PASSWORD@redis-master.redis:6379' and --set redis.existingSecret=relay-redis (networkPolicy.redisPeers admits it), or divide relay.limits.rateLimit by the replicas." (int64 $limits.rateLimit) $scale (mul $replicas (int64 $limits.rateLimit)) (include "tokenplace-relay.decimal" $limits.rateLimitWindowSeconds) .Release.Namespace) }}
{{- end }}
{{- if .Values.redis.existingSecret }}
{{- if eq (int64 $limits.rateLimit) 0 }}
{{- $lines = append $lines (printf "redis.existingSecret=%s is set, but relay.limits.rateLimit=0: Redis holds only the rate limit's counts, so the relay never connects to it. Set relay.limits.rateLimit, or drop redis.existingSecret." .Values.redis.existingSecret) }}
{{- else if and $np.enabled (not (include "tokenplace-relay.list" $np.redisPeers | fromJsonArray)) (not (include "tokenplace-relay.list" $np.extraEgress | fromJsonArray)) }}
{{- $lines = append $lines (printf "networkPolicy.redisPeers is empty, so the NetworkPolicy blocks Redis: the relay serves without the rate limit and counts relay_rate_limit_store_errors_total. Set it to your Redis pods (e.g. [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: redis}}, podSelector: {matchLabels: {app.kubernetes.io/name: redis}}}]) or, outside the cluster, [{ipBlock: {cidr: <its IP>/32}}]; the rule opens redis.port=%d." (int64 .Values.redis.port)) }}
{{- end }}
{{- end }}
{{- if and (include "tokenplace-relay.upstreamCaFile" .) (not (hasPrefix "https://" (include "tokenplace-relay.upstreamUrl" .))) }}
{{- $lines = append $lines (printf "upstream.ca is set, but the relay dials %s over plain http, so the CA is never used: point upstream.url at the GPU server's https:// URL, or drop upstream.ca." (include "tokenplace-relay.upstreamUrl" .)) }}
{{- end }}
{{- if $np.enabled }}
{{- $admitted := ternary "the ingress controller (Traefik), Prometheus and the chart's test pod" "the ingress controller (Traefik) and the chart's test pod" (and $sm.enabled true) }}
{{- if and (ne .Values.service.type "ClusterIP") (not (include "tokenplace-relay.list" $np.extraIngress | fromJsonArray)) }}
{{- $lines = append $lines (printf "service.type=%s, but the NetworkPolicy admits only %s: connections through the %s are dropped. Admit their sources with networkPolicy.extraIngress (e.g. [{from: [{ipBlock: {cidr: 192.168.1.0/24}}]}]), or keep service.type=ClusterIP and go through the Ingress." .Values.service.type $admitted (ternary "node port" "load balancer" (eq .Values.service.type "NodePort"))) }}
{{- end }}
{{- if and .Values.ingress.enabled (not (include "tokenplace-relay.list" $np.traefikPeers | fromJsonArray)) }}
{{- $lines = append $lines "networkPolicy.traefikPeers is empty, so the NetworkPolicy admits no ingress controller and every request through the Ingress times out: set it to your controller's pods (k3s: app.kubernetes.io/name=traefik in kube-system)." }}
{{- end }}
{{- if and $sm.enabled (not (include "tokenplace-relay.list" $np.prometheusPeers | fromJsonArray)) }}
{{- $lines = append $lines "networkPolicy.prometheusPeers is empty, so the NetworkPolicy admits no Prometheus and the ServiceMonitor's target stays down: set it to your Prometheus pods." }}
{{- end }}
{{- if and $np.allowDns (not (include "tokenplace-relay.list" $np.dnsPeers | fromJsonArray)) (not (regexMatch "^[0-9.]+$|:" (include "tokenplace-relay.upstreamHost" .))) }}
{{- $lines = append $lines (printf "networkPolicy.dnsPeers is empty, so the NetworkPolicy allows no DNS and the relay can't resolve %s (readiness stays 503): set it to your cluster DNS pods (k3s: k8s-app=kube-dns in kube-system)." (include "tokenplace-relay.upstreamHost" .)) }}
{{- end }}
{{- end }}
{{- toJson $lines }}
{{- end }}

{{/* The most replicas that can run at once: autoscaling.maxReplicas with the HPA, else replicaCount.
  Every limit of relay.limits is per pod, so this many times the cap can reach the GPU server. */}}
{{- define "tokenplace-relay.maxReplicas" -}}
{{- if .Values.autoscaling.enabled }}{{ int64 .Values.autoscaling.maxReplicas }}{{ else }}{{ int64 .Values.replicaCount }}{{ end }}
{{- end }}

{{/* What relay.limits does, as lines for NOTES.txt (a JSON list): each limit that is on, and what
  per pod means with more than one replica. */}}
{{- define "tokenplace-relay.limitsSummary" -}}
{{- $l := .Values.relay.limits }}
{{- $lines := list }}
{{- if gt (int64 $l.maxConcurrent) 0 }}
{{- $wait := ternary "none may wait: one more gets 503 at once" (printf "%d more wait up to %s s, then 503" (int64 $l.queueLimit) (include "tokenplace-relay.decimal" $l.queueTimeoutSeconds)) (eq (int64 $l.queueLimit) 0) }}
{{- $lines = append $lines (printf "GPU server: at most %d requests at once (relay.limits.maxConcurrent); %s." (int64 $l.maxConcurrent) $wait) }}
{{- else }}
{{- $lines = append $lines "GPU server: no cap (relay.limits.maxConcurrent=0): every request goes straight to it, however many." }}
{{- end }}
{{- $client := list }}
{{- if gt (int64 $l.maxConcurrentPerClient) 0 }}{{ $client = append $client (printf "%d requests at once" (int64 $l.maxConcurrentPerClient)) }}{{ end }}
{{- if gt (int64 $l.rateLimit) 0 }}{{ $client = append $client (printf "%d requests per %s s" (int64 $l.rateLimit) (include "tokenplace-relay.decimal" $l.rateLimitWindowSeconds)) }}{{ end }}
{{- if $client }}
{{- $lines = append $lines (printf "Per client (an IP address, an IPv6 /64): %s, then 429." (join " and " $client)) }}
{{- else }}
{{- $lines = append $lines "Per client: no limit (relay.limits.maxConcurrentPerClient=0, relay.limits.rateLimit=0)." }}
{{- end }}
{{- if gt (int64 $l.maxEventLoopDelayMs) 0 }}
{{- $lines = append $lines (printf "Load shedding: 503 while the relay's event loop lags more than %d ms." (int64 $l.maxEventLoopDelayMs)) }}
{{- end }}
{{- $replicas := include "tokenplace-relay.maxReplicas" . | int64 }}
{{- if and (gt $replicas 1) (gt (int64 $l.maxConcurrent) 0) }}
{{- $how := ternary (printf "up to %d replicas (autoscaling.maxReplicas)" $replicas) (printf "%d replicas (replicaCount)" $replicas) (and .Values.autoscaling.enabled true) }}
{{- $lines = append $lines (printf "The cap is per pod: %s x %d = up to %d requests at the GPU server at once. Set relay.limits.maxConcurrent to what the GPU serves well divided by the replicas (4 generations at once, 2 replicas: 2)." $how (int64 $l.maxConcurrent) (mul $replicas (int64 $l.maxConcurrent))) }}
{{- end }}
{{- if and (gt $replicas 1) (gt (int64 $l.maxConcurrentPerClient) 0) }}
{{- $lines = append $lines (printf "The per-client limit is per pod too: one client may hold up to %d x %d = %d requests at once across the replicas." $replicas (int64 $l.maxConcurrentPerClient) (mul $replicas (int64 $l.maxConcurrentPerClient))) }}
{{- end }}
{{- if and .Values.redis.existingSecret (gt (int64 $l.rateLimit) 0) }}
{{- $lines = append $lines (printf "The rate limit is counted in Redis (RELAY_REDIS_URL from Secret %q, key %q), shared by every pod; while Redis is unreachable the relay serves without it and counts relay_rate_limit_store_errors_total." .Values.redis.existingSecret .Values.redis.key) }}
{{- end }}
{{- toJson $lines }}
{{- end }}

{{/* An integer, or a percentage string such as "50%" (PodDisruptionBudget). */}}
{{- define "tokenplace-relay.intOrPercent" -}}
{{- if kindIs "string" . }}{{ . | quote }}{{ else }}{{ int64 . }}{{ end }}
{{- end }}

{{/* Monitoring -------------------------------------------------------------------------------------
  The `job` label Prometheus gives the ServiceMonitor's targets, as the Prometheus Operator sets it: the
  relay Service's name; when spec.jobLabel names a label of that Service with a non-empty value, that
  value instead (a jobLabel the Service lacks leaves the Service name, and NOTES.txt warns). */}}
{{- define "tokenplace-relay.metricsJob" -}}
{{- $jobLabel := .Values.metrics.serviceMonitor.jobLabel }}
{{- $serviceLabels := include "tokenplace-relay.labels" . | fromYaml }}
{{- if and $jobLabel (get $serviceLabels $jobLabel) }}
{{- get $serviceLabels $jobLabel }}
{{- else }}
{{- include "tokenplace-relay.fullname" . }}
{{- end }}
{{- end }}

{{/* The label matchers every alert starts from: exactly the targets of the chart's ServiceMonitor,
  i.e. its job (above) and the namespace of the relay's Service (the release's namespace, wherever the
  ServiceMonitor object lives: the Prometheus Operator labels targets with the Service's namespace). */}}
{{- define "tokenplace-relay.alertSelector" -}}
job="{{ include "tokenplace-relay.metricsJob" . }}",namespace="{{ .Release.Namespace }}"
{{- end }}

{{/* Answers that count as the relay's traffic: every endpoint but its own probes (/healthz, /livez),
  which the kubelet calls every few seconds whatever the users do. */}}
{{- define "tokenplace-relay.notProbes" -}}
endpoint!~"/healthz|/livez"
{{- end }}

{{/* A number for a PromQL expression: 0.05, 10, 2.5 (never 1.0e+01, which Helm's float64 would print
  with %e; %v keeps a plain decimal for the ranges the schema allows). */}}
{{- define "tokenplace-relay.promNumber" -}}
{{- printf "%v" (float64 .) }}
{{- end }}

{{/* The alerts that are enabled, as a JSON list of names, in the order the PrometheusRule lists them.
  An alert set to null (Helm then drops it, defaults included) is not rendered, like enabled: false. */}}
{{- define "tokenplace-relay.enabledAlerts" -}}
{{- $alerts := .Values.metrics.prometheusRule.alerts | default dict }}
{{- $names := list }}
{{- range list "RelayDown" "RelayUpstreamUnreachable" "RelayNotReady" "RelayHighErrorRate" "RelaySlowFirstByte" "RelayOverloaded" "RelayRateLimitStoreDown" }}
{{- $alert := get $alerts . }}
{{- if and (kindIs "map" $alert) $alert.enabled }}{{ $names = append $names . }}{{ end }}
{{- end }}
{{- toJson $names }}
{{- end }}
