{{/*
Chart name, truncated to the 63 characters of a DNS label.
*/}}
{{- define "foundry-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: <release>-<chart>, or the release name when it already contains the chart name.
*/}}
{{- define "foundry-operator.fullname" -}}
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

{{- define "foundry-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Standard labels (https://helm.sh/docs/chart_best_practices/labels/).
*/}}
{{- define "foundry-operator.labels" -}}
helm.sh/chart: {{ include "foundry-operator.chart" . }}
{{ include "foundry-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: foundry-operator
{{- end }}

{{/*
Selector labels: immutable once a Deployment exists, so nothing version-dependent goes here.
*/}}
{{- define "foundry-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "foundry-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "foundry-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "foundry-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image reference: a digest pins it; the tag defaults to the chart's appVersion (never "latest").
*/}}
{{- define "foundry-operator.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
"true" when the operator watches a list of namespaces rather than the whole cluster.
*/}}
{{- define "foundry-operator.namespaced" -}}
{{- if .Values.watchNamespaces }}true{{ end }}
{{- end }}

{{/*
"true" when kopf peering is on: several replicas elect one active replica through a peering object.
*/}}
{{- define "foundry-operator.peering" -}}
{{- if gt (int .Values.replicas) 1 }}true{{ end }}
{{- end }}

{{- define "foundry-operator.peeringName" -}}
{{- default (include "foundry-operator.fullname" .) .Values.peering.name }}
{{- end }}

{{/*
Azure endpoints of the selected cloud: Entra authority host and ARM endpoint. The ARM token
audience defaults to the ARM endpoint itself (the operator requests "<audience>/.default", the
scope Microsoft documents for the Python management SDKs in every cloud).
*/}}
{{- define "foundry-operator.azureCloud" -}}
{{- $presets := dict
  "AzurePublicCloud" (dict "authorityHost" "https://login.microsoftonline.com/" "resourceManagerEndpoint" "https://management.azure.com/")
  "AzureUSGovernment" (dict "authorityHost" "https://login.microsoftonline.us/" "resourceManagerEndpoint" "https://management.usgovcloudapi.net/")
  "AzureChinaCloud" (dict "authorityHost" "https://login.chinacloudapi.cn/" "resourceManagerEndpoint" "https://management.chinacloudapi.cn/")
  "Custom" (dict "authorityHost" "" "resourceManagerEndpoint" "")
}}
{{- $preset := get $presets .Values.azure.cloud }}
{{- $armEndpoint := default $preset.resourceManagerEndpoint .Values.azure.resourceManagerEndpoint }}
{{- $cloud := dict
  "authorityHost" (default $preset.authorityHost .Values.azure.authorityHost)
  "resourceManagerEndpoint" $armEndpoint
  "resourceManagerAudience" (default $armEndpoint .Values.azure.resourceManagerAudience)
}}
{{- toJson $cloud }}
{{- end }}

{{/*
Checks that values.schema.json cannot express across keys; each fails with a message naming the keys.
*/}}
{{- define "foundry-operator.validate" -}}
{{- if and .Values.azure.workloadIdentity.enabled .Values.azure.credentialsSecret }}
{{- fail "azure.workloadIdentity.enabled and azure.credentialsSecret are mutually exclusive: pick one way for the operator to sign in to Azure" }}
{{- end }}
{{- if and .Values.azure.caBundle.configMap .Values.azure.caBundle.secret }}
{{- fail "azure.caBundle: set configMap or secret, not both" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled=true" }}
{{- end }}
{{- if eq (int .Values.health.port) (int .Values.metrics.port) }}
{{- fail "health.port and metrics.port must differ" }}
{{- end }}
{{- end }}

{{/*
Name of cluster-scoped objects (ClusterRole, ClusterRoleBinding): qualified by the release
namespace, so that per-team installs in namespaced mode do not collide.
*/}}
{{- define "foundry-operator.clusterScopedName" -}}
{{- printf "%s-%s" .Release.Namespace (include "foundry-operator.fullname" .) }}
{{- end }}

{{/*
RBAC rules on namespaced resources: in a ClusterRole (cluster mode) or in a Role per watched
namespace (namespaced mode). docs/rbac.md explains each rule; tests/chart checks the two agree.
*/}}
{{- define "foundry-operator.namespacedRules" -}}
- apiGroups: ["foundry.llmops.io"]
  resources: ["foundryaccounts", "foundrydeployments"]
  verbs: ["list", "watch", "patch"]
- apiGroups: ["foundry.llmops.io"]
  resources: ["foundryaccounts/status", "foundrydeployments/status"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "create", "update"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}

{{/*
RBAC rules on cluster-scoped resources kopf reads in both modes.
*/}}
{{- define "foundry-operator.clusterRules" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- end }}
