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

{{- define "dlt.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) -}}
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

{{/* The Secret holding the run ledger's HMAC keys: the operator's, or the one the chart makes. */}}
{{- define "dlt.ledgerKeysSecret" -}}
{{- default (printf "%s-ledger-keys" (include "dlt.fullname" .)) .Values.consumer.ledgerKeys.existingSecret -}}
{{- end -}}
