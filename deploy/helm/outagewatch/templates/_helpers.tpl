{{- define "outagewatch.labels" -}}
app.kubernetes.io/name: outagewatch
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "outagewatch.selector" -}}
app.kubernetes.io/name: outagewatch
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "outagewatch.bootstrap" -}}
{{- if .Values.kafka.create -}}
{{ .Values.kafka.name }}-kafka-bootstrap:9092
{{- else -}}
{{ required "kafka.bootstrap is required when kafka.create is false" .Values.kafka.bootstrap }}
{{- end -}}
{{- end -}}

{{- define "outagewatch.clickhouseHost" -}}
clickhouse-{{ .Values.clickhouse.name }}
{{- end -}}

{{- define "outagewatch.writerSecret" -}}
{{- .Values.clickhouse.existingSecret | default (printf "%s-clickhouse-writer" .Release.Name) -}}
{{- end -}}

{{/* The environment every outagewatch process gets: the settings object, from variables. */}}
{{- define "outagewatch.env" -}}
- name: OUTAGEWATCH_CLICKHOUSE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "outagewatch.writerSecret" . }}
      key: password
- name: OUTAGEWATCH_CLICKHOUSE_READER_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "outagewatch.writerSecret" . }}
      key: reader-password
- name: OUTAGEWATCH_CLICKHOUSE_URL
  {{- if .Values.clickhouse.create }}
  value: "clickhouse://outagewatch:$(OUTAGEWATCH_CLICKHOUSE_PASSWORD)@{{ include "outagewatch.clickhouseHost" . }}:9000/{{ .Values.clickhouse.database }}"
  {{- else }}
  value: {{ required "clickhouse.url is required when clickhouse.create is false" .Values.clickhouse.url | quote }}
  {{- end }}
- name: OUTAGEWATCH_COLLECTOR_API_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ .Values.collector.apiKeysSecret }}
      key: api-keys
{{- end -}}

{{/* A container of the image running one `outagewatch` command. */}}
{{- define "outagewatch.container" -}}
name: {{ .name }}
image: "{{ .root.Values.image.repository }}:{{ .root.Values.image.tag }}"
imagePullPolicy: {{ .root.Values.image.pullPolicy }}
args: {{ toJson .args }}
env:
{{- include "outagewatch.env" .root | nindent 2 }}
envFrom:
  - configMapRef:
      name: {{ .root.Release.Name }}-settings
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities: {drop: [ALL]}
volumeMounts:
  - name: state
    mountPath: /var/lib/outagewatch
  - name: tmp
    mountPath: /tmp
{{- end -}}

{{- define "outagewatch.volumes" -}}
volumes:
  - name: state
    emptyDir: {}
  - name: tmp
    emptyDir: {}
{{- end -}}
