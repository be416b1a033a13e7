{{/* The chart's name, at most 63 characters. */}}
{{- define "hookwire.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The objects' name: the release name, unless it already contains the chart's. */}}
{{- define "hookwire.fullname" -}}
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

{{- define "hookwire.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hookwire.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "hookwire.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "hookwire.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: bridge
app.kubernetes.io/part-of: hookwire
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "hookwire.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "hookwire.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Seconds of a Go duration made of h, m and s parts ("25s", "1m30s"); used to
check the WebSocket timeouts against HOOKWIRE_PING_INTERVAL.
*/}}
{{- define "hookwire.seconds" -}}
{{- $total := 0 }}
{{- range (regexFindAll "[0-9]+[hms]" (toString .) -1) }}
{{- $n := int (trimSuffix "h" (trimSuffix "m" (trimSuffix "s" .))) }}
{{- if hasSuffix "h" . }}{{ $total = add $total (mul $n 3600) }}
{{- else if hasSuffix "m" . }}{{ $total = add $total (mul $n 60) }}
{{- else }}{{ $total = add $total $n }}{{ end }}
{{- end }}
{{- $total }}
{{- end }}

{{/* Refuses values that would break a drain or leak a secret. */}}
{{- define "hookwire.validate" -}}
{{- $v := .Values }}
{{- if le (int $v.terminationGracePeriodSeconds) (add $v.preStopSleepSeconds $v.drainTimeoutSeconds | int) }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must exceed preStopSleepSeconds + drainTimeoutSeconds (%v + %v): the kubelet would kill pods mid-drain" $v.terminationGracePeriodSeconds $v.preStopSleepSeconds $v.drainTimeoutSeconds) }}
{{- end }}
{{- range $k, $_ := $v.config }}
{{- if or (regexMatch "(SECRET|_KEYS?|PASSWORD|TOKEN)" $k) (eq $k "HOOKWIRE_REDIS_URL") }}
{{- fail (printf "config.%s: secrets do not go into values; put it in the Secret %q and name its key under secrets" $k $v.secrets.existingSecret) }}
{{- end }}
{{- if or (eq $k "HOOKWIRE_DRAIN_TIMEOUT") (eq $k "HOOKWIRE_LISTEN") }}
{{- fail (printf "config.%s: set drainTimeoutSeconds / containerPort instead" $k) }}
{{- end }}
{{- end }}
{{- range $src := $v.sources }}
{{- with $src.verify }}
{{- if hasKey . "secret" }}
{{- fail (printf "sources: %s: verify.secret holds a secret; use secret_env (mapped in secrets.extra) or secret_file" $src.name) }}
{{- end }}
{{- if and .secret_env (not (hasKey $v.secrets.extra .secret_env)) }}
{{- fail (printf "sources: %s: verify.secret_env %s is not set: map it to a key of the Secret in secrets.extra" $src.name .secret_env) }}
{{- end }}
{{- end }}
{{- end }}
{{- if not $v.secrets.existingSecret }}
{{- fail "secrets.existingSecret: name the Secret holding hookwire's keys (production mode refuses to start without them)" }}
{{- end }}
{{- $ping := include "hookwire.seconds" (default "25s" $v.config.HOOKWIRE_PING_INTERVAL) | int }}
{{- if and $v.ingress.enabled (le (int $v.ingress.wsTimeoutSeconds) $ping) }}
{{- fail (printf "ingress.wsTimeoutSeconds (%v) must exceed HOOKWIRE_PING_INTERVAL (%vs), or idle WebSockets are cut" $v.ingress.wsTimeoutSeconds $ping) }}
{{- end }}
{{- end }}

{{/* hookwire's secret variables that are set: name -> key of the Secret. */}}
{{- define "hookwire.secretVars" -}}
{{- $s := .Values.secrets }}
{{- with $s.redisUrlKey }}HOOKWIRE_REDIS_URL: {{ . }}
{{ end }}
{{- with $s.apiKeysKey }}HOOKWIRE_API_KEYS: {{ . }}
{{ end }}
{{- with $s.jwtSecretKey }}HOOKWIRE_JWT_SECRET: {{ . }}
{{ end }}
{{- with $s.webhookSecretKey }}HOOKWIRE_WEBHOOK_SECRET: {{ . }}
{{ end }}
{{- end }}
