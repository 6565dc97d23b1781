{{/* The chart name, shortened to a DNS label. */}}
{{- define "ero.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every resource name: <release>-<chart>, or the release name alone when it holds the chart name. */}}
{{- define "ero.fullname" -}}
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

{{- define "ero.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ero.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ero.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The selector labels as k=v,k=v (--member-network-policy). */}}
{{- define "ero.selectorLabelList" -}}
{{- printf "app.kubernetes.io/name=%s,app.kubernetes.io/instance=%s" (include "ero.name" .) .Release.Name }}
{{- end }}

{{- define "ero.labels" -}}
helm.sh/chart: {{ include "ero.chart" . }}
{{ include "ero.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: etcd-robustness
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "ero.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ero.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ero.runnerServiceAccountName" -}}
{{- if .Values.runner.serviceAccount.create }}
{{- default (printf "%s-runner" (include "ero.fullname" .)) .Values.runner.serviceAccount.name }}
{{- else }}
{{- required "runner.serviceAccount.name is required when runner.serviceAccount.create is false" .Values.runner.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Runner Pods are used with the kubernetes runtime and ConfigMap reports only. */}}
{{- define "ero.runnersEnabled" -}}
{{- if and .Values.runner.enabled (eq .Values.runtime "kubernetes") (eq .Values.reports.store "configMap") }}true{{- end }}
{{- end }}

{{/* The runner Pods' selector labels: the PodMonitor and the members' NetworkPolicy select them. */}}
{{- define "ero.runnerSelectorLabels" -}}
app.kubernetes.io/name: {{ include "ero.name" . }}-runner
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ero.runnerSelectorLabelList" -}}
{{- printf "app.kubernetes.io/name=%s-runner,app.kubernetes.io/instance=%s" (include "ero.name" .) .Release.Name }}
{{- end }}

{{/*
The runner Pods' permissions in the namespaces the operator watches: read the run and its cluster, write
the run's status, Events and report, and what faults do to members (delete and recreate a member's Pod
and PersistentVolumeClaim, read its agent token and TLS Secrets).
*/}}
{{- define "ero.runnerRules" -}}
- apiGroups: ["etcd.robustness.io"]
  resources: ["etcdclusters", "robustnessruns"]
  verbs: ["get"]
- apiGroups: ["etcd.robustness.io"]
  resources: ["robustnessruns/status"]
  verbs: ["get", "patch"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "create", "delete"]
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["get", "list", "create", "update", "delete"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "create", "update", "delete"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{- define "ero.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The fault agent's image: agentImage, or the operator image (it runs the agent too). */}}
{{- define "ero.agentImage" -}}
{{- if .Values.agentImage.repository }}
{{- printf "%s:%s" .Values.agentImage.repository (default .Chart.AppVersion .Values.agentImage.tag) }}
{{- else }}
{{- include "ero.image" . }}
{{- end }}
{{- end }}

{{- define "ero.reportClaimName" -}}
{{- default (printf "%s-reports" (include "ero.fullname" .)) .Values.reports.volume.existingClaim }}
{{- end }}

{{/*
The operator's permissions in the namespaces it watches: least privilege, no wildcards. The chart's
README and test/integration/helm-chart.test.ts hold the same table.
*/}}
{{- define "ero.operatorRules" -}}
- apiGroups: ["etcd.robustness.io"]
  resources: ["etcdclusters"]
  verbs: ["get", "list", "watch", "update", "patch"]
# Upgrade gates are RobustnessRuns the operator creates, and deletes once two upgrades newer.
- apiGroups: ["etcd.robustness.io"]
  resources: ["robustnessruns"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["etcd.robustness.io"]
  resources: ["etcdclusters/status", "robustnessruns/status"]
  verbs: ["get", "update", "patch"]
- apiGroups: ["etcd.robustness.io"]
  resources: ["etcdclusters/finalizers", "robustnessruns/finalizers"]
  verbs: ["update"]
# Members: a Pod and a PersistentVolumeClaim each; a rolling upgrade records the member's version on its
# PersistentVolumeClaim (update).
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "create", "delete"]
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["get", "list", "watch", "create", "update", "delete"]
# A headless Service for peers and a client Service per cluster.
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
# Fault agent tokens (created with the cluster, deleted with it) and TLS material (read).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "delete"]
# Stored run reports; the witness record of twoNodeWitness clusters (a ConfigMap witness).
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
# The witness record of twoNodeWitness clusters (a Lease witness).
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "update"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- if and .Values.networkPolicy.enabled (eq .Values.runtime "kubernetes") }}
# A NetworkPolicy per EtcdCluster (--member-network-policy): the agents' port from the operator Pods only.
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "create", "update", "delete"]
{{- end }}
{{- end }}
