{{/*
Names and labels, in the usual Helm way: the release name alone when it
already contains the chart's name (helm install authgear-forwardauth ...).
*/}}
{{- define "forwardauth.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "forwardauth.fullname" -}}
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

{{- define "forwardauth.selectorLabels" -}}
app.kubernetes.io/name: {{ include "forwardauth.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "forwardauth.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "forwardauth.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "forwardauth.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "forwardauth.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "forwardauth.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
The Secret the chart creates from secret.*, if any value is given there.
*/}}
{{- define "forwardauth.secretData" -}}
{{- $s := .Values.secret }}
{{- $data := dict }}
{{- if $s.cacheKeySecret }}{{ $_ := set $data "CACHE_KEY_SECRET" $s.cacheKeySecret }}{{ end }}
{{- if $s.webhookSecret }}{{ $_ := set $data "AUTHGEAR_WEBHOOK_SECRET" $s.webhookSecret }}{{ end }}
{{- if $s.adminToken }}{{ $_ := set $data "ADMIN_TOKEN" $s.adminToken }}{{ end }}
{{- if $s.redisURL }}{{ $_ := set $data "REDIS_URL" $s.redisURL }}{{ end }}
{{- if $s.signinStateSecret }}{{ $_ := set $data "SIGNIN_STATE_SECRET" $s.signinStateSecret }}{{ end }}
{{- toJson $data }}
{{- end }}

{{/*
The service's settings as name/value pairs, in the order of config.go. A
setting left empty ("" or null) is not set, so the service's own default
applies and is documented in one place (README's configuration table).
*/}}
{{- define "forwardauth.settings" -}}
{{- $v := .Values }}
{{- $redisURL := $v.redis.url }}
{{- if and $redisURL $v.redis.passwordSecret.name }}
{{- /* $(REDIS_PASSWORD) is expanded by Kubernetes from the variable defined just before. */}}
{{- $redisURL = regexReplaceAll "^(rediss?)://" $redisURL "${1}://:$$(REDIS_PASSWORD)@" }}
{{- if eq $v.redis.mode "sentinel" }}
{{- /* In sentinel mode the user info is the sentinels' password; the master's is ?password=. */}}
{{- $redisURL = printf "%s%spassword=$(REDIS_PASSWORD)" $redisURL (ternary "&" "?" (contains "?" $redisURL)) }}
{{- end }}
{{- end }}
{{- $pairs := list
  (list "AUTHGEAR_ENDPOINT" $v.authgear.endpoint)
  (list "AUTHGEAR_RESOLVER_URL" $v.authgear.resolverURL)
  (list "AUTHGEAR_COOKIE_PREFIX" $v.authgear.cookiePrefix)
  (list "LISTEN_ADDR" (printf ":%v" $v.containerPort))
  (list "REDIS_URL" $redisURL)
  (list "REDIS_MODE" $v.redis.mode)
  (list "REDIS_KEY_PREFIX" $v.redis.keyPrefix)
  (list "REDIS_TIMEOUT" $v.redis.timeout)
  (list "CACHE_TTL" $v.cache.ttl)
  (list "CACHE_NEGATIVE_TTL" $v.cache.negativeTTL)
  (list "LOCAL_CACHE_TTL" $v.cache.localTTL)
  (list "LOCAL_CACHE_SIZE" $v.cache.localSize)
  (list "RESOLVER_TIMEOUT" $v.resolver.timeout)
  (list "RESOLVER_MAX_CONCURRENT" $v.resolver.maxConcurrent)
  (list "RESOLVER_BREAK_AFTER" $v.resolver.breakAfter)
  (list "RESOLVER_BREAK_COOLDOWN" $v.resolver.breakCooldown)
  (list "RESOLVER_CLIENT_RATE" $v.resolver.clientRate)
  (list "RESOLVER_CLIENT_BURST" $v.resolver.clientBurst)
  (list "CREDENTIAL_SHAPES" $v.credentialShapes)
  (list "STALE_IF_ERROR" $v.resolver.staleIfError)
  (list "JWT_VERIFY" $v.jwt.verify)
  (list "JWT_EXTRA_AUDIENCES" (join "," $v.jwt.extraAudiences))
  (list "JWT_MAX_LIFETIME" $v.jwt.maxLifetime)
  (list "TRUSTED_PROXIES" (join "," $v.trustedProxies))
  (list "ALLOW_PREFLIGHT" $v.allowPreflight)
  (list "LOGIN_URL" $v.login.url)
  (list "LOGIN_RETURN_HOSTS" (join "," $v.login.returnHosts))
  (list "LOGIN_RETURN_PARAM" $v.login.returnParam)
  (list "AUTHGEAR_CLIENT_ID" $v.signin.clientID)
  (list "SIGNOUT_REDIRECT_URL" $v.signin.signoutRedirectURL)
  (list "SIGNIN_CALLBACK_URL" $v.signin.callbackURL)
  (list "SIGNIN_STATE_TTL" $v.signin.stateTTL)
  (list "ASSERTION_KEYS_FILE" (ternary "/run/secrets/assertion/jwks.json" "" (ne $v.assertion.keysSecret "")))
  (list "ASSERTION_ISSUER" $v.assertion.issuer)
  (list "ASSERTION_TTL" $v.assertion.ttl)
  (list "SHUTDOWN_TIMEOUT" $v.shutdownTimeout)
  (list "LOG_LEVEL" $v.logLevel)
}}
{{- range $pairs }}
{{- $value := index . 1 }}
{{- if kindIs "float64" $value }}
{{- /* Numbers from a values file are floats: 2000000 would print as 2e+06. */}}
{{- $value = int64 $value }}
{{- end }}
{{- if not (or (kindIs "invalid" $value) (eq (toString $value) "")) }}
- name: {{ index . 0 }}
  value: {{ toString $value | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Settings that only fail at the service's start-up are refused here instead,
with the same words, so that helm install says what is wrong.
*/}}
{{- define "forwardauth.validate" -}}
{{- $v := .Values }}
{{- if not $v.authgear.endpoint }}
{{- fail "authgear.endpoint is required: the project's public origin, e.g. https://myproject.authgear.cloud" }}
{{- end }}
{{- if and $v.secret.existingSecret (ne (include "forwardauth.secretData" .) "{}") }}
{{- fail "secret: set either existingSecret or the values the chart puts in a Secret of its own (cacheKeySecret, webhookSecret, adminToken, redisURL, signinStateSecret), not both" }}
{{- end }}
{{- if and (or $v.redis.url $v.secret.redisURL) (not $v.secret.cacheKeySecret) (not $v.secret.existingSecret) }}
{{- fail "secret.cacheKeySecret is required with Redis: replicas sharing Redis must compute the same keys (e.g. openssl rand -hex 32), or name a secret.existingSecret that holds CACHE_KEY_SECRET" }}
{{- end }}
{{- if and $v.redis.url $v.secret.redisURL }}
{{- fail "redis.url and secret.redisURL: set the Redis URL in one place (secret.redisURL when it holds a password)" }}
{{- end }}
{{- if and $v.redis.passwordSecret.name (not $v.redis.url) }}
{{- fail "redis.passwordSecret needs redis.url (without a password): the password is put into its user info" }}
{{- end }}
{{- if and $v.redis.passwordSecret.name (or (contains "@" $v.redis.url) (regexMatch "[?&]password=" $v.redis.url)) }}
{{- fail "redis.url already has a password: with redis.passwordSecret, give the URL without credentials" }}
{{- end }}
{{- if and $v.redis.passwordSecret.name (not $v.redis.passwordSecret.key) }}
{{- fail "redis.passwordSecret.key: the key of the password in that Secret is required" }}
{{- end }}
{{- if $v.signin.clientID }}
{{- if not $v.signin.signoutRedirectURL }}
{{- fail "signin.signoutRedirectURL is required with signin.clientID: where Authgear sends the browser after sign-out, registered among the client's post-logout redirect URIs" }}
{{- end }}
{{- if not $v.login.returnHosts }}
{{- fail "login.returnHosts is required with signin.clientID: the app hosts a sign-in may return to" }}
{{- end }}
{{- if and (not $v.secret.signinStateSecret) (not $v.secret.existingSecret) }}
{{- fail "secret.signinStateSecret is required with signin.clientID (32+ characters, e.g. openssl rand -hex 32), or name a secret.existingSecret that holds SIGNIN_STATE_SECRET" }}
{{- end }}
{{- else if or $v.signin.signoutRedirectURL $v.signin.callbackURL $v.secret.signinStateSecret }}
{{- fail "signin.clientID is required with signin.signoutRedirectURL, signin.callbackURL or secret.signinStateSecret: the built-in sign-in needs the client id of a first-party client of the project" }}
{{- end }}
{{- if and $v.login.url (not $v.login.returnHosts) }}
{{- fail "login.returnHosts is required with login.url: the hosts a sign-in may return to, so that no link can redirect elsewhere" }}
{{- end }}
{{- if and $v.autoscaling.enabled (gt (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" }}
{{- end }}
{{- end }}
