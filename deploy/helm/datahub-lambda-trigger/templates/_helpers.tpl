{{/* Names and labels shared by every template. */}}

{{- define "dlt.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "dlt.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "<fullname>-api" / "<fullname>-consumer": call with (dict "root" $ "component" "api"). */}}
{{- define "dlt.componentName" -}}
{{- printf "%s-%s" (include "dlt.fullname" .root | trunc 54 | trimSuffix "-") .component -}}
{{- end -}}

{{- define "dlt.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "dlt.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: datahub
{{- end -}}

{{- define "dlt.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dlt.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The Prometheus job name the alert rules and the dashboard expect for a component. */}}
{{- define "dlt.job" -}}
lambda-trigger-{{ .component }}
{{- end -}}

{{/* `<registry>/<repository>:<tag>` (the registry only when given), as datahub-helm composes
     images: a registry host belongs in image.registry, never inside repository. */}}
{{- define "dlt.image" -}}
{{- $repo := .image.repository -}}
{{- with .image.registry -}}{{- $repo = printf "%s/%s" (trimSuffix "/" .) $repo -}}{{- end -}}
{{- printf "%s:%s" $repo (default .root.Chart.AppVersion .image.tag) -}}
{{- end -}}

{{- define "dlt.consumerServiceAccountName" -}}
{{- if .Values.consumer.serviceAccount.create -}}
{{- default (include "dlt.componentName" (dict "root" . "component" "consumer")) .Values.consumer.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.consumer.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "dlt.mappingConfigMap" -}}
{{- default (printf "%s-mapping" (include "dlt.fullname" .)) .Values.mapping.existingConfigMap -}}
{{- end -}}

{{/* Where the mapping ConfigMap is mounted. A directory, not a subPath: only a directory mount
     is updated in place by the kubelet. */}}
{{- define "dlt.mappingDir" -}}/etc/datahub-lambda-trigger/mapping{{- end -}}

{{/* Environment both services share: DataHub, the mapping, the SDK's telemetry off. */}}
{{- define "dlt.commonEnv" -}}
- name: DATAHUB_GMS_URL
  value: {{ .Values.datahub.gmsUrl | quote }}
- name: DATAHUB_GMS_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ required "datahub.tokenSecret.name: the Secret holding DataHub's service token" .Values.datahub.tokenSecret.name | quote }}
      key: {{ .Values.datahub.tokenSecret.key | quote }}
- name: DATAHUB_TIMEOUT_SECONDS
  value: {{ .Values.datahub.timeoutSeconds | quote }}
{{- with .Values.datahub.executorId }}
- name: LAMBDA_TRIGGER_EXECUTOR_ID
  value: {{ . | quote }}
{{- end }}
- name: DATAHUB_INGESTION_LAMBDA_MAPPING_FILE
  value: {{ printf "%s/mapping.yaml" (include "dlt.mappingDir" .) | quote }}
- name: DATAHUB_TELEMETRY_ENABLED
  value: "false"
{{- end -}}

{{/* Volumes both services share: the mapping, and a writable /tmp on a read-only root. */}}
{{- define "dlt.volumes" -}}
- name: mapping
  configMap:
    name: {{ include "dlt.mappingConfigMap" . }}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end -}}

{{- define "dlt.volumeMounts" -}}
- name: mapping
  mountPath: {{ include "dlt.mappingDir" . }}
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- end -}}

{{/* A container's extra environment, shared by both components: call with the component's
     values. `envFrom` entries and extra mounts come after the chart's own. */}}
{{- define "dlt.envFrom" -}}
{{- with .envFrom }}
envFrom:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The consumer's Kafka security and schema registry settings. Secrets are referenced, never
     copied into the manifest. */}}
{{- define "dlt.kafkaSecurityEnv" -}}
{{- $k := .Values.consumer.kafka -}}
{{- $auths := list "none" "msk-iam" "scram-sha-256" "scram-sha-512" "plain" -}}
{{- if not (has $k.auth $auths) -}}
{{- fail (printf "consumer.kafka.auth must be one of %s, not %q" (join ", " $auths) $k.auth) -}}
{{- end -}}
{{- with $k.securityProtocol }}
- name: LAMBDA_TRIGGER_KAFKA_SECURITY_PROTOCOL
  value: {{ . | quote }}
{{- end }}
{{- if ne $k.auth "none" }}
- name: LAMBDA_TRIGGER_KAFKA_AUTH
  value: {{ $k.auth | quote }}
{{- end }}
{{- if has $k.auth (list "scram-sha-256" "scram-sha-512" "plain") }}
- name: LAMBDA_TRIGGER_KAFKA_SASL_USERNAME
  value: {{ required (printf "consumer.kafka.sasl.username: needed with auth %s" $k.auth) $k.sasl.username | quote }}
- name: LAMBDA_TRIGGER_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ required (printf "consumer.kafka.sasl.passwordSecret.name: the Secret holding the SASL password (auth %s)" $k.auth) $k.sasl.passwordSecret.name | quote }}
      key: {{ $k.sasl.passwordSecret.key | quote }}
{{- end }}
{{- with $k.tls.caLocation }}
- name: LAMBDA_TRIGGER_KAFKA_SSL_CA_LOCATION
  value: {{ . | quote }}
{{- end }}
{{- if or $k.tls.certLocation $k.tls.keyLocation }}
- name: LAMBDA_TRIGGER_KAFKA_SSL_CERT_LOCATION
  value: {{ required "consumer.kafka.tls.certLocation: mTLS needs the client certificate and its key" $k.tls.certLocation | quote }}
- name: LAMBDA_TRIGGER_KAFKA_SSL_KEY_LOCATION
  value: {{ required "consumer.kafka.tls.keyLocation: mTLS needs the client certificate and its key" $k.tls.keyLocation | quote }}
{{- end }}
{{- if eq $k.auth "msk-iam" }}
- name: LAMBDA_TRIGGER_KAFKA_MSK_REGION
  value: {{ required "consumer.kafka.mskRegion (or consumer.aws.region): the MSK cluster's region" ($k.mskRegion | default .Values.consumer.aws.region) | quote }}
{{- end }}
{{- $r := .Values.consumer.schemaRegistry }}
- name: SCHEMA_REGISTRY_TYPE
  value: {{ $r.type | quote }}
{{- if eq $r.type "AWS_GLUE" }}
{{- if or $r.userInfoSecret.name $r.bearerTokenSecret.name }}
{{- fail "consumer.schemaRegistry: AWS_GLUE authenticates with the consumer's AWS identity; userInfoSecret and bearerTokenSecret are for KAFKA" }}
{{- end }}
- name: AWS_GLUE_SCHEMA_REGISTRY_REGION
  value: {{ required "consumer.schemaRegistry.glueRegion (or consumer.aws.region): the Glue registry's region" ($r.glueRegion | default .Values.consumer.aws.region) | quote }}
{{- else }}
- name: SCHEMA_REGISTRY_URL
  value: {{ required "consumer.schemaRegistry.url" $r.url | quote }}
{{- if and $r.userInfoSecret.name $r.bearerTokenSecret.name }}
{{- fail "consumer.schemaRegistry: give userInfoSecret (basic auth) or bearerTokenSecret, not both" }}
{{- end }}
{{- with $r.userInfoSecret.name }}
- name: LAMBDA_TRIGGER_SCHEMA_REGISTRY_USER_INFO
  valueFrom:
    secretKeyRef:
      name: {{ . | quote }}
      key: {{ $r.userInfoSecret.key | quote }}
{{- end }}
{{- with $r.bearerTokenSecret.name }}
- name: LAMBDA_TRIGGER_SCHEMA_REGISTRY_BEARER_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ . | quote }}
      key: {{ $r.bearerTokenSecret.key | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The Secret holding the run ledger's HMAC keys: the operator's, or the one the chart makes. */}}
{{- define "dlt.ledgerKeysSecret" -}}
{{- default (printf "%s-ledger-keys" (include "dlt.fullname" .)) .Values.consumer.ledgerKeys.existingSecret -}}
{{- end -}}
